"""train.data.batches: how much GPU memory a trial's data may take (its share of the GPU, its own cached blocks)."""

from __future__ import annotations

from train.data.batches import device_budget

GB = 1 << 30


def test_a_trial_with_half_a_gpu_gets_half_of_it_not_all_that_is_free():
    # 80 GB card, 78 GB free: a 0.5-GPU trial may fill half of the card at most, times gpu_cache_fraction.
    assert device_budget(free=78 * GB, total=80 * GB, cached=0, share=0.5, fraction=0.5) == 20 * GB
    # Two such trials starting together each see 78 GB free; together they stay within the card.
    assert 2 * device_budget(78 * GB, 80 * GB, 0, 0.5, 1.0) <= 80 * GB


def test_a_reused_process_counts_its_own_cached_blocks_as_free():
    # The last trial in this process left 10 GB in torch's caching allocator: the driver shows 30 GB free,
    # but 40 GB are this trial's to use.
    assert device_budget(free=30 * GB, total=80 * GB, cached=10 * GB, share=1.0, fraction=1.0) == 40 * GB


def test_less_free_than_the_share_limits_the_budget():
    assert device_budget(free=5 * GB, total=80 * GB, cached=0, share=0.5, fraction=0.5) == 2.5 * GB
    assert device_budget(free=0, total=80 * GB, cached=0, share=0.25, fraction=0.5) == 0
