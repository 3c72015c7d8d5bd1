"""Slack installations are sealed with ACCESSBOT_SLACK_TOKEN_KEY: nothing in the sealed text gives the token away,
another key cannot open it, and a key is rotated by putting the new one in front of the old."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from bot.channels.slack_installations import SealBroken, TokenSeal

TOKEN = "xoxb-0000000001-T0CONTOSO1-fakeworkspacetoken"


def key() -> str:
    return Fernet.generate_key().decode("ascii")


def test_a_sealed_installation_holds_no_part_of_its_token_and_opens_back_to_it() -> None:
    seal = TokenSeal(key())
    sealed = seal.seal({"team_id": "T0CONTOSO1", "bot_token": TOKEN})
    assert "xoxb" not in sealed and "fakeworkspacetoken" not in sealed and "T0CONTOSO1" not in sealed
    assert seal.open(sealed, "T0CONTOSO1")["bot_token"] == TOKEN


def test_another_key_cannot_open_it_and_says_what_to_do() -> None:
    sealed = TokenSeal(key()).seal({"bot_token": TOKEN})
    with pytest.raises(SealBroken) as refused:
        TokenSeal(key()).open(sealed, "T0CONTOSO1")
    assert "T0CONTOSO1" in str(refused.value) and "install again" in str(refused.value)


def test_a_rotated_key_opens_what_the_old_one_sealed_and_seals_with_the_new_one() -> None:
    old, new = key(), key()
    before = TokenSeal(old).seal({"bot_token": TOKEN})
    rotated = TokenSeal(f"{new}, {old}")
    assert rotated.open(before, "T1")["bot_token"] == TOKEN
    after = rotated.seal({"bot_token": TOKEN})
    assert TokenSeal(new).open(after, "T1")["bot_token"] == TOKEN
    with pytest.raises(SealBroken):
        TokenSeal(old).open(after, "T1")


@pytest.mark.parametrize("keys", ["", " , ", "not-a-fernet-key", "é" * 44])
def test_a_missing_or_malformed_key_is_refused_with_how_to_make_one(keys: str) -> None:
    with pytest.raises(ValueError) as refused:
        TokenSeal(keys)
    assert "Fernet.generate_key()" in str(refused.value)
