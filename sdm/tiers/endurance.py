"""How long the SCM drives last under a stream of row updates: the page store's write amplification
priced on the drives' endurance ratings and write models.

Bytes the drives see per updated row (`SsdLifetime.write_amplification` x row_bytes):
- row shadowing (`page_writes.update`) packs each update batch of b rows densely into
  ceil(b / rows_per_page) new pages, however scattered the rows are: page_bytes x ceil(b / rpp) / b
  per row (page_bytes / rpp for large batches, the default; a whole page per row for b = 1);
- compaction at `max_space_amp` a rewrites the live bytes L each time (a - 1) L of delta pages piled
  up: 1 / (a - 1) extra bytes per delta byte, so a / (a - 1) in all (6x at the default 1.2);
- `ftl_write_amp`: the drive's own garbage collection (not published per drive: 1.0 by default,
  override with a measured figure);
- page-table segments rewritten in LMDB per commit are left out: at most SEGMENT_PAGES x 24 B per
  touched segment per commit, small beside the pages when batches are large.
Writes are spread evenly over the `scm_count` drives.
"""
from __future__ import annotations

from dataclasses import dataclass

from sdm.core.checks import real_number, whole_number
from sdm.core.errors import InvalidInputError
from sdm.tiers.compaction import DEFAULT_MAX_SPACE_AMP, check_space_amp

SECONDS_PER_DAY = 86400.0
WRITE_QUEUE_DEPTH = 32  # page writes in flight per drive when pricing the write time


@dataclass(frozen=True)
class SsdLifetime:
    """What an update stream costs the SCM drives (per drive, the stream spread evenly)."""

    device: str
    drives: int
    update_rows_per_s: float
    row_bytes: int
    write_amplification: float     # drive bytes written / host row bytes updated
    bytes_written_per_s: float     # per drive, amplification included
    dwpd_used: float               # drive writes per day that rate is
    dwpd_rated: float | None
    years: float | None            # until the rated endurance is written (None: no rating)
    write_busy_fraction: float     # share of each drive's time spent on these page writes (write model)
    write_watts: float             # added power per drive while writing at that share

    def rows(self) -> list[tuple[str, str]]:
        """(label, value) lines for a report (`sdm-plan` prints them)."""
        years = "no rating" if self.years is None else ("never" if self.years == float("inf") else f"{self.years:.2f}")
        return [
            ("scm drive", f"{self.device} x {self.drives}"),
            ("update stream", f"{self.update_rows_per_s:,.0f} rows/s x {self.row_bytes} B"),
            ("write amplification", f"{self.write_amplification:.1f}x (delta pages, compaction, FTL)"),
            ("written per drive", f"{self.bytes_written_per_s / 1e6:,.2f} MB/s"),
            ("drive writes per day", f"{self.dwpd_used:.3f} of {self.dwpd_rated} rated"),
            ("years to rated endurance", years),
            ("drive time on writes", f"{100 * self.write_busy_fraction:.1f}%"),
            ("added write power", f"{self.write_watts:.2f} W per drive"),
        ]


def ssd_lifetime(hardware, update_rows_per_s, row_bytes, *, page_bytes: int = 4096,
                 batch_rows: int | None = None, max_space_amp: float = DEFAULT_MAX_SPACE_AMP,
                 ftl_write_amp: float = 1.0) -> SsdLifetime:
    """Endurance use of `update_rows_per_s` row updates of `row_bytes` on `hardware`'s SCM drives
    (a HardwareSpec with `scm` and `scm_count`, or one DeviceSpec). See the module doc."""
    scm, drives = (hardware.scm, hardware.scm_count) if hasattr(hardware, "scm_count") else (hardware, 1)
    if scm is None or not drives:
        raise InvalidInputError(f"hardware {getattr(hardware, 'name', hardware)!r} has no SCM drives")
    rate = real_number(update_rows_per_s, "update_rows_per_s", minimum=0.0)
    row_bytes = whole_number(row_bytes, "row_bytes", minimum=1)
    page_bytes = whole_number(page_bytes, "page_bytes", minimum=1)
    if row_bytes > page_bytes:
        page_bytes = -(-row_bytes // page_bytes) * page_bytes  # a wide row's page (as ingest does)
    rpp = page_bytes // row_bytes
    if batch_rows is None:
        share = float(rpp)  # rows per page written: dense delta pages
    else:
        b = whole_number(batch_rows, "batch_rows", minimum=1)
        share = b / -(-b // rpp)
    amp_limit = check_space_amp(max_space_amp)
    ftl = real_number(ftl_write_amp, "ftl_write_amp", minimum=1.0)
    pages_per_s = rate / share / drives * amp_limit / (amp_limit - 1.0)
    per_drive = pages_per_s * page_bytes * ftl
    busy = float(scm.write_time_s(int(round(pages_per_s)), page_bytes, WRITE_QUEUE_DEPTH))  # 1 s of page writes
    extra_w = max((scm.write_watts if scm.write_watts is not None else scm.active_watts) - scm.idle_watts, 0.0)
    return SsdLifetime(
        device=scm.name, drives=int(drives), update_rows_per_s=rate, row_bytes=row_bytes,
        write_amplification=page_bytes / share * amp_limit / (amp_limit - 1.0) * ftl / row_bytes,
        bytes_written_per_s=per_drive, dwpd_used=float(scm.drive_writes_per_day(per_drive)),
        dwpd_rated=scm.endurance_dwpd, years=scm.endurance_years(per_drive),
        write_busy_fraction=busy, write_watts=min(busy, 1.0) * extra_w,
    )
