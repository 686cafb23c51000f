"""The fake engine's names (tests/fake_engine.py): a behaviour is asked for exactly, never by accident."""

from __future__ import annotations

import pytest

from tests.fake_engine import BEHAVIOURS, UnknownBehaviour, behaviour_of, named


def test_a_behaviour_is_a_whole_leading_token_before_the_separator() -> None:
    assert named("crash", "e.wav") == "crash--e.wav"
    for behaviour in BEHAVIOURS:
        assert behaviour_of(named(behaviour, "call.wav")) == behaviour
    assert behaviour_of("team a/slow--call.wav") == "slow"  # the file's own name decides


@pytest.mark.parametrize("name", ["slow-copy.wav", "crash.wav", "hang.wav", "exchange.wav", "flaky-bloat.wav",
                                  "звонок 1.wav"])
def test_ordinary_names_take_no_behaviour_whatever_words_they_contain(name: str) -> None:
    assert behaviour_of(name) is None


@pytest.mark.parametrize("name", ["slwo--call.wav", "--call.wav", "my-slow--call.wav", "Slow--call.wav", "slow--"])
def test_a_name_that_asks_for_an_unknown_behaviour_is_an_error(name: str) -> None:
    with pytest.raises(UnknownBehaviour):
        behaviour_of(name)


def test_names_are_built_only_from_known_behaviours_and_plain_names() -> None:
    with pytest.raises(UnknownBehaviour):
        named("slwo", "call.wav")
    with pytest.raises(ValueError, match="plain name"):
        named("slow", "crash--call.wav")
    with pytest.raises(ValueError, match="plain name"):
        named("slow", "team a/call.wav")
