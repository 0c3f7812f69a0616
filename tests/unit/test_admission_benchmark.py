"""The admission benchmark's reading of its kill phase: when the capacity came back."""

from benchmarks.admission import capacity_back_s


def sample(t: float, capacity: int) -> dict:
    return {"t": t, "capacity{search}": capacity}


def test_the_capacity_is_back_at_the_first_sample_after_its_lowest_at_its_first_value():
    samples = [sample(0, 8192), sample(10, 4096), sample(20, 4096), sample(65, 8192),
               sample(140, 8192)]
    assert capacity_back_s(samples) == 65  # not the end of the burst
    assert capacity_back_s(samples[:3]) is None  # never back while sampled
    assert capacity_back_s([]) is None
