"""The data pipeline (paper §3.2–3.4): clip readers, curation filters, caption motion suppression,
palindrome augmentation, the training dataset and the latent cache. See docs/data.md."""

from relic.data.captions import suppress_motion
from relic.data.clips import Clip, list_clips, read_clip, read_re10k_clip, write_clip
from relic.data.filters import ClipVerdict, FilterConfig, Finding, filter_clip, report_markdown
from relic.data.palindrome import palindrome, palindrome_indices, sample_pivot

__all__ = ["suppress_motion", "Clip", "list_clips", "read_clip", "read_re10k_clip", "write_clip", "ClipVerdict",
           "FilterConfig", "Finding", "filter_clip", "report_markdown", "palindrome", "palindrome_indices",
           "sample_pivot"]
