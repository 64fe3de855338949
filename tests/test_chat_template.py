"""The chat template: role tokens, end of turn, and a loss mask on assistant tokens only."""

import pytest

from flaxgpt.data.chat_template import render, to_text
from flaxgpt.data.tokenizer import get_tokenizer

TOK = get_tokenizer("flaxgpt")
SP = TOK.special_ids


def test_mask_covers_assistant_content_and_its_end_only():
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi <|end|> there"},
                {"role": "assistant", "content": "Hello!"}]
    ids, mask = render(messages, TOK)
    assert len(ids) == len(mask)
    assert TOK.decode(ids) == to_text(messages)
    trained = [i for i, m in zip(ids, mask, strict=True) if m]
    assert TOK.decode(trained) == "Hello!<|end|>"
    assert ids.count(SP["<|end|>"]) == 3, "a literal <|end|> in user text stays text"
    assert [i for i in ids if i in SP.values()] == [SP["<|system|>"], SP["<|end|>"], SP["<|user|>"], SP["<|end|>"],
                                                    SP["<|assistant|>"], SP["<|end|>"]]


def test_generation_prompt_and_errors():
    ids, mask = render([{"role": "user", "content": "Hi"}], TOK, add_generation_prompt=True)
    assert ids[-1] == SP["<|assistant|>"] and mask[-1] == 0 and not any(mask)
    with pytest.raises(ValueError, match="message 0: role"):
        render([{"role": "bot", "content": "x"}], TOK)
    with pytest.raises(ValueError, match="flaxgpt"):
        render([{"role": "user", "content": "x"}], get_tokenizer("gpt2"))
