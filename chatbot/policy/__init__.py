"""The school's policy: the model the bot enforces and the TOML loader that fills it."""

from chatbot.policy.loader import (
    DEFAULT_POLICY_FILE,
    ENV_VAR,
    default_policy,
    load_policy,
    policy_from_env,
    policy_from_toml,
    to_toml,
)
from chatbot.policy.model import (
    CALL_KINDS,
    STAGES,
    ChecklistItem,
    ConcernCategory,
    Contacts,
    Policy,
    PolicyError,
    Term,
)

__all__ = [
    "CALL_KINDS",
    "DEFAULT_POLICY_FILE",
    "ENV_VAR",
    "STAGES",
    "ChecklistItem",
    "ConcernCategory",
    "Contacts",
    "Policy",
    "PolicyError",
    "Term",
    "default_policy",
    "load_policy",
    "policy_from_env",
    "policy_from_toml",
    "to_toml",
]
