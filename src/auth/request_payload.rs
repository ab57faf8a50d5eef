//! What a request authorizer is sent (API Gateway's REQUEST authorizer payloads 2.0 and 1.0)
//! and what it answers (simple responses, IAM policies with `principalId` and `context`):
//! sans-IO.
