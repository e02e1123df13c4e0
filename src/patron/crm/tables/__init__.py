"""Every table of the operational store; importing this package registers them all."""

from patron.crm.tables.audit import AuditEvent
from patron.crm.tables.base import Base
from patron.crm.tables.customers import (
    CONSENT_CHANNELS,
    Customer,
    CustomerConsent,
    CustomerExternalId,
    CustomerMerge,
    CustomerTag,
)
from patron.crm.tables.feedback import (
    FEEDBACK_CHANNELS,
    FEEDBACK_KINDS,
    SURVEY_KINDS,
    FeedbackRecord,
    SurveyInvitation,
    SurveyKey,
    SurveyResponse,
)
from patron.crm.tables.idempotency import IdempotencyKey
from patron.crm.tables.imports import ImportBatch
from patron.crm.tables.loyalty import (
    ENTRY_KINDS,
    REFUND_POLICIES,
    REWARD_KINDS,
    TIER_BASES,
    LoyaltyAccount,
    LoyaltyAllocation,
    LoyaltyEntry,
    LoyaltyJobRun,
    LoyaltyLot,
    LoyaltyProgram,
    LoyaltyReward,
    LoyaltyTier,
)
from patron.crm.tables.orders import ORDER_STATUSES, Order, OrderLine
from patron.crm.tables.scores import ScoreSnapshot, ScoringRun
from patron.crm.tables.tasks import TASK_KINDS, TASK_STATUSES, Task
from patron.crm.tables.touchpoints import TOUCHPOINT_CHANNELS, TOUCHPOINT_KINDS, Touchpoint
from patron.crm.tables.users import ROLES, ApiToken, LoginAttempt, User, WebSession

__all__ = [
    "Base",
    "CONSENT_CHANNELS",
    "FEEDBACK_CHANNELS",
    "FEEDBACK_KINDS",
    "SURVEY_KINDS",
    "FeedbackRecord",
    "SurveyInvitation",
    "SurveyKey",
    "SurveyResponse",
    "ORDER_STATUSES",
    "ROLES",
    "TASK_KINDS",
    "TASK_STATUSES",
    "TOUCHPOINT_CHANNELS",
    "TOUCHPOINT_KINDS",
    "ApiToken",
    "AuditEvent",
    "Customer",
    "CustomerConsent",
    "CustomerExternalId",
    "CustomerMerge",
    "CustomerTag",
    "IdempotencyKey",
    "ImportBatch",
    "ENTRY_KINDS",
    "REFUND_POLICIES",
    "REWARD_KINDS",
    "TIER_BASES",
    "LoyaltyAccount",
    "LoyaltyAllocation",
    "LoyaltyEntry",
    "LoyaltyJobRun",
    "LoyaltyLot",
    "LoyaltyProgram",
    "LoyaltyReward",
    "LoyaltyTier",
    "LoginAttempt",
    "Order",
    "OrderLine",
    "ScoreSnapshot",
    "ScoringRun",
    "Task",
    "Touchpoint",
    "User",
    "WebSession",
]
