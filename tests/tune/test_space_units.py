"""--space parsing (whole messages), the default space, pruning by the profile checks and by fit."""

from __future__ import annotations

import pytest

from vllmtune.errors import TuneError
from vllmtune.profile.loaded import LoadedProfile
from vllmtune.tune.space import (
    Pruned,
    changes,
    default_space,
    input_config,
    int_range,
    parse_knob,
    parse_space,
    prune,
)

VALID = (
    "valid knobs: prefix_caching, batching.max_num_batched_tokens, batching.max_num_seqs, batching.chunked_prefill, "
    "quantization.kv_cache_dtype, speculative.num_tokens, speculative.prompt_lookup_max, "
    "speculative.prompt_lookup_min, speculative.draft_tensor_parallel_size, resources.gpu_memory_utilization"
)


def test_integer_ranges_are_every_integer_when_narrow_and_powers_of_two_when_wide() -> None:
    assert int_range(0, 6, None) == (0, 1, 2, 3, 4, 5, 6)
    assert int_range(2048, 16384, None) == (2048, 4096, 8192, 16384)
    assert int_range(100, 1000, None) == (100, 128, 256, 512, 1000)
    assert int_range(64, 512, 128) == (64, 192, 320, 448, 512)


def test_a_knob_holds_the_input_value_too(cpu: LoadedProfile) -> None:
    assert parse_knob("batching.max_num_seqs=64..512", cpu).values == (2, 64, 128, 256, 512)
    assert parse_knob("speculative.num_tokens=0..2", cpu).values == (0, 1, 2, 3)
    assert parse_knob("batching.chunked_prefill=true|false", cpu).values == (True, False)
    assert parse_knob("batching.chunked_prefill=bool", cpu).values == (False, True)
    assert parse_knob("quantization.kv_cache_dtype=auto|fp8", cpu).values == ("auto", "fp8")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "batching.max_num_seq=1..4",
            "--space 'batching.max_num_seq=1..4': batching.max_num_seq is not a knob vllmtune tune can set for "
            "vLLM 0.32.0; " + VALID,
        ),
        (
            "model.max_model_len=1024|2048",
            "--space 'model.max_model_len=1024|2048': model.max_model_len is not a knob vllmtune tune can set for "
            "vLLM 0.32.0; " + VALID,
        ),
        (
            "batching.max_num_seqs",
            "--space 'batching.max_num_seqs': not PATH=VALUES; write PATH=a..b, PATH=a..b:STEP or PATH=a|b|c, "
            "e.g. --space batching.max_num_seqs=64..512",
        ),
        (
            "batching.max_num_seqs=64..lots",
            "--space 'batching.max_num_seqs=64..lots': 'lots' is not an integer; write PATH=a..b, PATH=a..b:STEP "
            "or PATH=a|b|c, e.g. --space batching.max_num_seqs=64..512",
        ),
        (
            "batching.max_num_seqs=512..64",
            "--space 'batching.max_num_seqs=512..64': the range must go from a low to a high value, with a step >= 1",
        ),
        (
            "batching.chunked_prefill=yes|no",
            "--space 'batching.chunked_prefill=yes|no': batching.chunked_prefill is true or false, not 'yes'",
        ),
        (
            "resources.gpu_memory_utilization=0.5..0.9",
            "--space 'resources.gpu_memory_utilization=0.5..0.9': a..b is for integers; "
            "resources.gpu_memory_utilization takes a|b|c",
        ),
        (
            "quantization.kv_cache_dtype=auto|fp7",
            "--space 'quantization.kv_cache_dtype=auto|fp7': 'fp7' is not one of "
            "auto, bfloat16, float16, fp8, fp8_ds_mla, fp8_e4m3, fp8_e5m2, fp8_inc, fp8_per_token_head, "
            "int4_per_token_head, int8_per_token_head, nvfp4, nvfp4_4over6, nvfp4_ds_mla, turboquant_3bit_nc, "
            "turboquant_4bit_nc, turboquant_k3v4_nc, turboquant_k8v4, ultraquant_4bit",
        ),
    ],
)
def test_bad_spaces_say_what_is_wrong(cpu: LoadedProfile, text: str, message: str) -> None:
    with pytest.raises(TuneError) as err:
        parse_knob(text, cpu)
    assert str(err.value) == message


def test_a_knob_twice_and_a_speculative_knob_without_the_section(cpu: LoadedProfile, gpu: LoadedProfile) -> None:
    with pytest.raises(TuneError) as err:
        parse_space(["batching.max_num_seqs=1|2", "batching.max_num_seqs=4"], cpu)
    assert str(err.value) == "--space batching.max_num_seqs is given twice; give each knob once, with all its values"
    with pytest.raises(TuneError) as err:
        parse_space(["speculative.num_tokens=1..3"], gpu)
    assert str(err.value) == (
        "--space 'speculative.num_tokens=1..3': the profile has no speculative section; add one (method and, "
        "for draft_model, model) to tune its knobs"
    )


def test_the_default_space_is_the_batching_knobs_and_speculative_tokens(cpu: LoadedProfile, gpu: LoadedProfile) -> None:
    assert {k.name: k.values for k in default_space(cpu)} == {
        "batching.max_num_batched_tokens": (1024, 2048, 4096, 8192, 16384),
        "batching.max_num_seqs": (2, 16, 32, 64, 128, 256, 512),
        "batching.chunked_prefill": (True, False),
        "speculative.num_tokens": (0, 1, 2, 3, 4, 5, 6),
    }
    assert [k.name for k in default_space(gpu)] == [
        "batching.max_num_batched_tokens", "batching.max_num_seqs", "batching.chunked_prefill"
    ]  # fmt: skip


def test_changes_hold_only_what_differs_and_num_tokens_0_removes_the_section(cpu: LoadedProfile) -> None:
    knobs = parse_space(["batching.max_num_seqs=2|8", "speculative.num_tokens=0|3"], cpu)
    assert input_config(knobs, cpu) == (2, 3)
    assert changes(knobs, (2, 3), cpu) == {}
    assert changes(knobs, (8, 3), cpu) == {"batching": {"max_num_seqs": 8}}
    assert changes(knobs, (8, 0), cpu) == {"batching": {"max_num_seqs": 8}, "speculative": None}


def test_the_profile_checks_prune_with_their_message(cpu: LoadedProfile) -> None:
    knobs = parse_space(["batching.max_num_batched_tokens=2048|4096", "batching.chunked_prefill=true|false"], cpu)
    valid, pruned = prune(knobs, cpu)
    assert valid == [(2048, True), (4096, True), (4096, False)]
    assert pruned == [
        Pruned(
            (2048, False),
            "batching.max_num_batched_tokens: 2048 is below model.max_model_len (4096); with chunked_prefill off "
            "a whole prompt must fit one step: raise it to >= 4096 or enable chunked_prefill",
        )
    ]


def test_fit_prunes_what_does_not_fit_the_gpu(gpu: LoadedProfile) -> None:
    knobs = parse_space(["resources.gpu_memory_utilization=0.3|0.9"], gpu)
    valid, pruned = prune(knobs, gpu)
    assert valid == [(0.9,)]
    assert pruned == [
        Pruned(
            (0.3,),
            "fit: does not fit: weights 14.96 GiB + reserve 1.86 GiB (+-0.37 GiB) per GPU exceed 6.61 GiB "
            "(0.3 x 22.04 GiB L4) (vllmtune fit --suggest for options)",
        )
    ]


def test_a_space_too_big_to_enumerate_is_refused(cpu: LoadedProfile) -> None:  # 4096 x (1024, 2048, the input 4096)
    knobs = parse_space(["batching.max_num_seqs=1..4096:1", "batching.max_num_batched_tokens=1024|2048"], cpu)
    with pytest.raises(TuneError) as err:
        prune(knobs, cpu)
    assert str(err.value) == (
        "the space has 12,288 configurations; vllmtune tune enumerates at most 4,096 to prune them before any "
        "server starts; narrow a range, give a :STEP, or tune fewer knobs"
    )


def test_a_config_whose_profile_another_config_already_gives_is_pruned_as_the_same(cpu: LoadedProfile) -> None:
    # speculative.num_tokens 0 removes the section: its prompt_lookup_max no longer changes the profile
    knobs = parse_space(["speculative.num_tokens=0|3", "speculative.prompt_lookup_max=4|8"], cpu)
    valid, pruned = prune(knobs, cpu)
    assert valid == [(0, 4), (3, 4), (3, 8)]
    assert pruned == [Pruned((0, 8), "the same profile as num_tokens=0 prompt_lookup_max=4")]
