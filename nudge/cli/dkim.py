"""``nudge dkim keygen``: a DKIM key pair, and the DNS record that publishes it."""

from __future__ import annotations

import os
from pathlib import Path

import click


@click.group("dkim")
def dkim_group() -> None:
    """DKIM signing keys (NUDGE_DKIM_DOMAIN, NUDGE_DKIM_SELECTOR, NUDGE_DKIM_KEY_FILE)."""


@dkim_group.command("keygen")
@click.option("--selector", required=True, help="The key's name in DNS, e.g. nudge2026.")
@click.option("--domain", required=True, help="The signing domain: your From domain.")
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the private key (PEM); never overwritten.",
)
def keygen(selector: str, domain: str, out: Path) -> None:
    """Write a 2048-bit RSA private key to OUT (mode 0600) and print the DNS TXT
    record to publish for it."""
    from nudge.delivery.dkim import (
        KEYGEN_BITS,
        DnsRecord,
        domain_name,
        generate_key,
        private_key_pem,
        public_key_txt,
        selector_name,
    )

    try:
        domain = domain_name(domain)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--domain") from None
    try:
        selector = selector_name(selector)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--selector") from None
    key = generate_key()
    try:
        # O_EXCL: a key already published must not be replaced by accident.
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise click.ClickException(f"{out}: {exc.strerror or exc}") from None
    with os.fdopen(fd, "wb") as file:
        os.fchmod(file.fileno(), 0o600)  # whatever the umask
        file.write(private_key_pem(key))
    record = DnsRecord(selector, domain, public_key_txt(key))
    click.echo(f"wrote a {KEYGEN_BITS}-bit RSA private key to {out} (mode 0600): keep it secret")
    click.echo("")
    click.echo("Publish this TXT record (zone-file syntax):")
    click.echo("")
    click.echo(f"  {record.zone_line()}")
    click.echo("")
    click.echo("or, in a DNS provider's form:")
    click.echo(f"  name:  {record.name}")
    click.echo(f"  value: {record.value}")
    click.echo("")
    click.echo("Then run nudge deliver with:")
    click.echo(f"  NUDGE_DKIM_DOMAIN={domain}")
    click.echo(f"  NUDGE_DKIM_SELECTOR={selector}")
    click.echo(f"  NUDGE_DKIM_KEY_FILE={out.resolve()}")
