"""The example function of config/lambda.toml: an ordinary AWS Lambda handler.

tollgate runs it with the official Python runtime client (`python3 -m awslambdaric app.handler`),
exactly as AWS Lambda would: the same handler deploys to AWS unchanged.
"""

import json
import os


def handler(event, context):
    # payload format 2.0 (HTTP API): rawPath, queryStringParameters, pathParameters, body...
    name = (event.get("queryStringParameters") or {}).get("name", "world")
    return {
        "statusCode": 200,
        "headers": {"content-type": "application/json"},
        "cookies": ["visited=1; Path=/; HttpOnly"],
        "body": json.dumps(
            {
                "message": f"hello, {name}",
                "path": event.get("rawPath"),
                "proxy": (event.get("pathParameters") or {}).get("proxy"),
                "requestId": event["requestContext"]["requestId"],
                "table": os.environ.get("TABLE"),
                "function": context.function_name,
                "remainingMs": context.get_remaining_time_in_millis(),
            }
        ),
    }
