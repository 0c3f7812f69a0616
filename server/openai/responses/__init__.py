"""OpenAI's Responses API (POST and GET /v1/responses), served by the chat path."""
