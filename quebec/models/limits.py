"""The rows behind limits: semaphores (concurrency keys, queue limits), rate-limit windows and
the keys unique jobs hold."""

from datetime import timedelta

from django.db import IntegrityError, models, transaction
from django.db.models import F
from django.utils import timezone

from quebec.db.connection import write_transaction
from quebec.routing import QuebecManager


class SemaphoreQuerySet(models.QuerySet):
    def wait(self, key, limit, duration):
        """Take one of ``limit`` slots of ``key``; True when taken, False when all are held."""
        now = timezone.now()
        fields = {"value": F("value") - 1, "updated_at": now, "expires_at": _expiry(now, duration)}
        # The guard (value > 0) and the decrement are one statement: two processes can never
        # both take the last slot.
        if self.filter(key=key, value__gt=0).update(**fields):
            return True
        if self.filter(key=key).exists():
            return False
        try:
            with transaction.atomic(using=self.db):  # a savepoint: losing the race to create is fine
                self.create(key=key, value=limit - 1, expires_at=fields["expires_at"])
            return True
        except IntegrityError:
            # Another transaction created the row this instant, taking a slot. Updating it now
            # would deadlock on MySQL against the other losers of the race (each holds a shared
            # lock from its failed insert), so count the key as full: a blocked job is let in
            # when a holder finishes, and a ready row is claimed on the next poll.
            return False

    def ensure(self, key, limit):
        """Create ``key``'s row with all ``limit`` slots free if it does not exist (call outside
        transactions, so that racing creators cannot deadlock)."""
        try:
            with write_transaction(self.db):
                self.get_or_create(key=key, defaults={"value": limit, "expires_at": _expiry(timezone.now(), None)})
        except IntegrityError:
            pass

    def force(self, key, limit, duration):
        """Take a slot of ``key`` whether or not one is free (an operator's override)."""
        now = timezone.now()
        taken = self.filter(key=key).update(value=F("value") - 1, updated_at=now, expires_at=_expiry(now, duration))
        if not taken:
            self.create(key=key, value=limit - 1, expires_at=_expiry(now, duration))

    def signal(self, key, limit, duration):
        """Give back a slot of ``key``, never above ``limit``."""
        now = timezone.now()
        self.filter(key=key, value__lt=limit).update(
            value=F("value") + 1, updated_at=now, expires_at=_expiry(now, duration)
        )

    def full(self, keys):
        return set(self.filter(key__in=keys, value__lte=0).values_list("key", flat=True))

    def expired(self):
        return self.filter(expires_at__lt=timezone.now())


def _expiry(now, duration):
    # Queue semaphores have no TTL: pruning dead processes gives their slots back.
    return now + timedelta(seconds=duration) if duration is not None else now + timedelta(days=3650)


class Semaphore(models.Model):
    """Free slots of one concurrency key; changed only by guarded atomic updates."""

    key = models.CharField(max_length=255, unique=True)
    value = models.IntegerField(default=1)
    expires_at = models.DateTimeField()
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    objects = QuebecManager.from_queryset(SemaphoreQuerySet)()

    class Meta:
        db_table = "quebec_semaphores"
        indexes = [models.Index(fields=["expires_at"], name="quebec_semaphores_expiry")]

    def __str__(self):
        return self.key


class RateLimitStartQuerySet(models.QuerySet):
    def admit(self, bucket, max_starts, window, now, lock_key):
        """Record a start in ``bucket`` if its window (seconds) has room and return None; else
        return when the oldest counted start leaves the window. ``lock_key`` names the semaphore
        row that serialises the bucket's starters."""
        window = timedelta(seconds=window)
        lock = Semaphore.objects.using(self.db).filter(key=lock_key)
        if not lock.exists():
            # Created outside the transaction below: concurrent inserts of one unique key can
            # deadlock on MySQL, and a lost race here is harmless.
            Semaphore.objects.using(self.db).ensure(lock_key, 0)
        with write_transaction(self.db):
            # One lock row per bucket serialises its starters: two workers cannot both see the
            # last free place in the window.
            lock.select_for_update().exists()
            recent = self.filter(bucket=bucket)
            recent.filter(started_at__lt=now - window).delete()
            starts = list(recent.order_by("started_at").values_list("started_at", flat=True))
            if len(starts) < max_starts:
                self.create(bucket=bucket, started_at=now)
                return None
        return starts[len(starts) - max_starts] + window + timedelta(milliseconds=1)


class RateLimitStart(models.Model):
    """When a rate-limited job started, kept for as long as its window lasts."""

    bucket = models.CharField(max_length=255)
    started_at = models.DateTimeField()

    objects = QuebecManager.from_queryset(RateLimitStartQuerySet)()

    class Meta:
        db_table = "quebec_rate_limit_starts"
        indexes = [models.Index(fields=["bucket", "started_at"], name="quebec_rate_limit_window")]


class UniqueKeyQuerySet(models.QuerySet):
    def held(self, now=None):
        """Keys still held: not past their ``unique_for``."""
        return self.filter(models.Q(expires_at__isnull=True) | models.Q(expires_at__gte=now or timezone.now()))


class UniqueKey(models.Model):
    """A key a unique job holds, by its ``active_job_id`` (known before the job's row is written).

    The primary key, ``key``, is what keeps two jobs from holding one key: it is taken by an
    INSERT that does nothing on a conflict (or takes over a key past its ``expires_at``).
    """

    key = models.CharField(max_length=255, primary_key=True)
    active_job_id = models.UUIDField()
    expires_at = models.DateTimeField(null=True, blank=True)  # unique_for; None: until released
    created_at = models.DateTimeField(default=timezone.now)

    objects = UniqueKeyQuerySet.as_manager()

    class Meta:
        db_table = "quebec_unique_keys"

    def __str__(self):
        return self.key
