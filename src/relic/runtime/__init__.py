"""Real-time streaming runtime (paper §4.2–§4.5): flow-matching sampling, the block-causal student and
:class:`~relic.runtime.stream.StreamingSession`, the one engine API. See docs/runtime.md."""

from relic.runtime.sampling import (add_noise, euler_sample, shift_sigma, student_denoise, student_sigmas,
                                    velocity_target, x0_from_velocity)

__all__ = ["add_noise", "euler_sample", "shift_sigma", "student_denoise", "student_sigmas", "velocity_target",
           "x0_from_velocity", "StreamingSession", "Student"]


def __getattr__(name):
    # lazy: importing the sampler must not import the models
    if name == "StreamingSession":
        from relic.runtime.stream import StreamingSession
        return StreamingSession
    if name == "Student":
        from relic.runtime.student import Student
        return Student
    raise AttributeError(name)
