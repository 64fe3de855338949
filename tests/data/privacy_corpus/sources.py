"""A second privacy corpus (tests/test_privacy_corpus.py): Maren Solberg's mail, chat, CV and notes, with other
people's names, addresses and passwords planted in the styles people write them (canaries.txt lists each)."""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    """The owner and the four sources of the corpus (paths relative to this file)."""
    return ml_collections.ConfigDict({
        "owner": {"names": ["Maren Solberg", "Maren"], "emails": ["maren@solberg.example"],
                  "handles": ["maren", "msolberg"], "public": ["https://solberg.example", "solberg.example"]},
        "workers": 1,
        "sources": {
            "mail": {"kind": "mbox", "path": "mail"},
            "chat": {"kind": "discord", "path": "chat/discord.json"},
            "cv": {"kind": "documents", "path": "cv", "doc_kind": "cv"},
            "notes": {"kind": "documents", "path": "notes"},
        },
        "quality": {"perplexity_run": ""},
    })
