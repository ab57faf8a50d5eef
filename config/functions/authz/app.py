"""The example request authorizer of config/authorizer.toml: an ordinary AWS Lambda REQUEST
authorizer handler (payload format 2.0 with simple responses), run by tollgate with the official
Python runtime client (`python3 -m awslambdaric app.handler`); the same handler deploys to AWS
unchanged.

It admits a caller whose `Authorization` value is one of TOKENS and tells the route who it is
(the context becomes `$context.authorizer.NAME`).
"""

import os

# token → user; a real authorizer would look the token up, verify a signature, ask a database...
TOKENS = dict(pair.split("=", 1) for pair in os.environ.get("TOKENS", "").split(",") if "=" in pair)


def handler(event, context):
    # payload 2.0: identitySource holds the values of the authorizer's identity_sources
    token = (event.get("identitySource") or [""])[0]
    user = TOKENS.get(token)
    if user is None:
        return {"isAuthorized": False}
    return {"isAuthorized": True, "context": {"user": user, "route": event["routeKey"]}}
