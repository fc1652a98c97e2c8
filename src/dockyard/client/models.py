"""The typed answers of the API: the server's own response models (``dockyard.api.schemas``),
re-exported under plain names - one source of truth for both ends.

Those modules import pydantic and Dockyard's domain only (never FastAPI, SQLAlchemy or the
engine client; ``tests/unit/test_client_imports.py`` holds that), but building them takes a
few hundred milliseconds, so the clients import this module on first use, not at
``import dockyard.client``.
"""

from __future__ import annotations

from dockyard.api.schemas.access import AccountList as AccountList
from dockyard.api.schemas.access import AccountOut as Account
from dockyard.api.schemas.access import AccountUsageOut as AccountWithUsage
from dockyard.api.schemas.access import MyAccountOut as MyAccount
from dockyard.api.schemas.access import NewServiceKeyOut as NewServiceKey
from dockyard.api.schemas.access import NewTokenOut as NewToken
from dockyard.api.schemas.access import ServiceKeyList as ServiceKeyList
from dockyard.api.schemas.access import ServiceKeyOut as ServiceKeyInfo
from dockyard.api.schemas.access import WhoAmI as WhoAmI
from dockyard.api.schemas.builds import JobAccepted as JobAccepted
from dockyard.api.schemas.builds import JobOut as Job
from dockyard.api.schemas.builds import JobPage as JobPage
from dockyard.api.schemas.common import ErrorOut as ErrorBody
from dockyard.api.schemas.containers import ContainerOut as Container
from dockyard.api.schemas.containers import ContainerPage as ContainerPage
from dockyard.api.schemas.containers import ContainerStatusOut as ContainerStatus
from dockyard.api.schemas.files import ChangeList as ChangeList
from dockyard.api.schemas.files import FileListing as FileListing
from dockyard.api.schemas.files import UploadOut as UploadResult
from dockyard.api.schemas.images import ImageOut as Image
from dockyard.api.schemas.images import ImagePageOut as ImagePage
from dockyard.api.schemas.observe import EventOut as Event
from dockyard.api.schemas.observe import EventPage as EventPage
from dockyard.api.schemas.observe import MetricsOut as Metrics
from dockyard.api.schemas.system import HealthOut as Health

__all__ = [
    "Account",
    "AccountList",
    "AccountWithUsage",
    "ChangeList",
    "Container",
    "ContainerPage",
    "ContainerStatus",
    "ErrorBody",
    "Event",
    "EventPage",
    "FileListing",
    "Health",
    "Image",
    "ImagePage",
    "Job",
    "JobAccepted",
    "JobPage",
    "Metrics",
    "MyAccount",
    "NewServiceKey",
    "NewToken",
    "ServiceKeyInfo",
    "ServiceKeyList",
    "UploadResult",
    "WhoAmI",
]

# Job states after which nothing changes (docs/builds.md).
FINAL_JOB_STATES = frozenset({"succeeded", "failed", "cancelled"})
