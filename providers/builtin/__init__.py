"""The built-in providers, each a plugin module registered through the `reasoning_agent`
entry points like any third-party plugin: `echo`, `openai`, `anthropic`, `openai_compatible`.

Importing these modules is cheap: the official SDKs are imported only by a provider whose
`transport` is "sdk", on its first call.
"""
