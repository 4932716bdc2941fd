"""The delivery worker: send commands in, rendered emails and delivery events out."""
