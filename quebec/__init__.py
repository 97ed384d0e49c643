"""Quebec: a background job queue for Django that lives in your own database."""

from quebec.job import BaseClass, JobHandle, perform_all_later
from quebec.registry import Quebec, UnknownJobClass, default

__all__ = ["BaseClass", "JobHandle", "Quebec", "UnknownJobClass", "default", "perform_all_later"]
__version__ = "0.1.0"
