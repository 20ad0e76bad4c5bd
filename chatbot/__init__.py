"""The platform-neutral core of the safe live-video bot.

Nothing in this package may import a platform SDK (slack_bolt, slack_sdk, botbuilder):
adapters translate platform payloads into :class:`chatbot.interaction.Interaction` and the
core's :mod:`chatbot.effects` back into platform calls.
"""
