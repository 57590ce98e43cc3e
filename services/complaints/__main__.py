"""`python -m services.complaints [serve|migrate|republish|replay-dead-letters]`, and the
Open311 API keys: `issue-open311-key CLIENT`, `revoke-open311-key KEY_ID`,
`list-open311-keys` (the same use cases as the admin routes)."""

from argparse import ArgumentParser, Namespace
from uuid import UUID

from services.complaints import handlers
from services.complaints.app import ComplaintsSettings, build
from shared.kit.app import Service
from shared.kit.cli import Command, main

# Who the key rows name as issuer or revoker when an operator runs the command.
OPERATOR = "operator (command line)"


async def issue(service: Service, args: Namespace) -> str:
    key, secret = await handlers.issue_api_key(service.context, args.client, OPERATOR)
    return f"issued key {key.id} to {key.client}; give them this key (it is not shown again):\n{secret}"


async def revoke(service: Service, args: Namespace) -> str:
    key = await handlers.revoke_api_key(service.context, args.key_id, OPERATOR)
    return f"revoked key {key.id} of {key.client} at {key.revoked_at:%Y-%m-%d %H:%M:%S %Z}"


async def listed(service: Service, _: Namespace) -> str:
    keys = await handlers.api_keys(service.context)
    return (
        "\n".join(f"{k.id}  {k.prefix}…  {'active ' if k.active else 'revoked'}  {k.client}" for k in keys)
        or "no keys issued"
    )


def _client(parser: ArgumentParser) -> None:
    parser.add_argument("client", help="the client application, and who runs it")


def _key_id(parser: ArgumentParser) -> None:
    parser.add_argument("key_id", type=UUID)


COMMANDS = {
    "issue-open311-key": Command("issue an Open311 API key to a client application", issue, _client),
    "revoke-open311-key": Command("revoke an Open311 API key", revoke, _key_id),
    "list-open311-keys": Command("list the Open311 API keys (never the keys themselves)", listed),
}

if __name__ == "__main__":
    main(build, ComplaintsSettings, COMMANDS)
