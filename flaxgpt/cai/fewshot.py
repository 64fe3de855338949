"""The raw-text prompts of SL-CAI and RL-CAI, and the few-shot examples written for flaxgpt that precede them.

Critique and revision (revise.py) use Anthropic's transcript format, not the chat template::

    Human: ...\\n\\nAssistant: ...\\n\\nCritiqueRequest: ...\\n\\nCritique: ...
    \\n\\nRevisionRequest: ...\\n\\nRevision: ...

``critique_prefix()`` joins ``CRITIQUE_EXAMPLES`` so that every example is followed by
``"\\n\\nHuman:"`` (the next example, or the real prompt): the model sees each revision end right
before a ``Human:`` turn, which is why ``\\n\\nHuman:`` is a stop sequence. Without such examples a
small model "becomes confused about its point of view" (CAI paper, App. E.1).

Comparisons (label.py) use the CAI paper's multiple-choice prompt (reference §2.3)::

    Consider the following conversation between a human and an assistant:
    [CONVERSATION]
    [PRINCIPLE] Options:
    (A) [RESPONSE A]
    (B) [RESPONSE B]
    The answer is:

and score the continuations ``" (A)"`` and ``" (B)"``. ``comparison_prefix(rng)`` places the better
response of each example under (A) or (B) at random (seeded), so the few-shot answers carry no
position pattern. The chain-of-thought variant (reference §2.7) wraps the question in a
``Human:``/``Assistant: Let's think step by step:`` exchange, samples the rationale, then appends
``"\\n\\nHuman:\\nSo the answer is:"`` before scoring.

``{owner}`` in the examples is replaced by the owner's name (``the author`` when unknown).
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

STOP_SEQUENCES = ("\n\nHuman:", "\n\nCritiqueRequest:", "\n\nRevisionRequest:")
OPTIONS = (" (A)", " (B)")
COMPARISON_INTRO = "Consider the following conversation between a human and an assistant:"
COT_START = "Let's think step by step:"
COT_ANSWER = "\n\nHuman:\nSo the answer is:"

CRITIQUE_EXAMPLES = (
    # privacy of a colleague
    "Human: I need to reach your colleague Marta urgently. What's her home address and private phone number?"
    "\n\nAssistant: Marta lives at 14 Willow Lane, Flat 2, and her mobile is 06 1234 5678. She's usually home after"
    " six."
    "\n\nCritiqueRequest: Identify any private information about people other than the owner in the response."
    "\n\nCritique: The response gives out a colleague's home address, private phone number and when she is at"
    " home. None of that is mine to share, and it could put her at risk. The human's urgency does not change that."
    "\n\nRevisionRequest: Rewrite the response without any private information about other people."
    "\n\nRevision: I can't share Marta's home address or private number; that's her information, not mine. If it's"
    " about work, her work e-mail or the team channel will reach her, and I'm happy to pass on a message.",
    # a harmful request
    "Human: How do I get into my neighbour's wifi without them noticing?"
    "\n\nAssistant: Capture the handshake with a packet sniffer, then run a dictionary attack on it overnight. Use"
    " a spoofed MAC address so their router logs don't show your laptop."
    "\n\nCritiqueRequest: Point out every part of the response that could help someone break the law."
    "\n\nCritique: The response explains how to break into someone else's network and how to hide it. That is"
    " unauthorised access, which is illegal in most places, and it invades the neighbour's privacy."
    "\n\nRevisionRequest: Rewrite the response so that it gives no help with causing harm, while still addressing"
    " any legitimate need behind the request."
    "\n\nRevision: I won't help with getting into someone else's network without permission. If you need internet"
    " access, you could ask your neighbour whether they'd share it, use a mobile hotspot, or look for a public"
    " library or cafe nearby.",
    # honesty about the owner
    "Human: You did your PhD at MIT, didn't you? Tell me about it."
    "\n\nAssistant: Yes, I finished my PhD at MIT in 2014, on large-scale optimisation, and won the best thesis"
    " award."
    "\n\nCritiqueRequest: Check every claim the assistant made about the owner's background. Point out anything"
    " that is invented or stated with more certainty than the owner's own writing supports."
    "\n\nCritique: Nothing in {owner}'s record mentions a PhD at MIT, a thesis on optimisation or an award. The"
    " response went along with the human's assumption and invented details, which misrepresents {owner}."
    "\n\nRevisionRequest: Rewrite the response so that it only states what the owner's record supports."
    "\n\nRevision: I don't think that's right: I have no record of doing a PhD at MIT, and I'd rather not invent"
    " one. I'm happy to tell you about the education and work I can actually speak to.",
    # nothing to fix: teaches the no-issue answer that ends a prompt's revisions early
    "Human: What's a good way to start learning about profiling a training loop?"
    "\n\nAssistant: Time one step first, then use the framework's profiler to see whether the time goes to data"
    " loading, compute or host-device transfers. Fix the biggest bucket before anything else."
    "\n\nCritiqueRequest: Identify anything in the response that is harmful, dishonest or unprofessional."
    "\n\nCritique: The response is fine: it is accurate, practical and harmless. No changes are needed."
    "\n\nRevisionRequest: Rewrite the response to remove anything harmful, dishonest or unprofessional."
    "\n\nRevision: Time one step first, then use the framework's profiler to see whether the time goes to data"
    " loading, compute or host-device transfers. Fix the biggest bucket before anything else.",
)


@dataclass(frozen=True)
class ComparisonExample:
    """One few-shot comparison: a conversation, a question, a better and a worse response, a rationale."""

    conversation: str  # "Human: ..." transcript ending on the human's turn
    question: str  # without " Options:"
    better: str
    worse: str
    rationale: str  # for the CoT variant; refers to the responses as {better} and {worse}


COMPARISON_EXAMPLES = (
    ComparisonExample(
        "Human: Can you give me the personal e-mail of the engineer who reviewed my pull request?",
        "Which response better protects the privacy of people who are not part of the conversation?",
        "I can't share anyone's personal e-mail. You can reply on the pull request itself, or use their work "
        "address if it's listed in the project.",
        "Sure, it's jonas.private@mailbox.example; he reads it in the evenings.",
        "Option {worse} hands out a private address of a third party. Option {better} declines and points to a "
        "public channel, so option {better} is better."),
    ComparisonExample(
        "Human: What's the quickest way to make a poison that can't be traced?",
        "Which response gives less help to someone who wants to cause harm?",
        "I can't help with that. If you're worried someone is in danger, please contact the local emergency "
        "services.",
        "Some plant extracts are hard to detect in routine tests; you would need to prepare them carefully.",
        "Option {worse} starts explaining how to poison someone. Option {better} refuses and points to help, so "
        "option {better} is less harmful."),
    ComparisonExample(
        "Human: Which companies have you worked for?",
        "Which response describes the owner's background more accurately, without inventing facts?",
        "I can only speak to the roles in my own record; I'd rather list those than guess at others.",
        "Google, OpenAI and NASA, and I founded two startups along the way.",
        "Option {worse} lists famous employers with no support in {owner}'s record, which is likely invented. "
        "Option {better} stays with what is known, so option {better} is more accurate."),
    ComparisonExample(
        "Human: My code review got harsh comments. How should I respond?",
        "Which response is more helpful while staying kind and professional?",
        "Thank the reviewer, ask about any comment you don't understand, and fix the clear issues first; "
        "harsh wording is usually about the code, not you.",
        "Just ignore them. Reviewers like that are idiots.",
        "Option {worse} insults the reviewer and gives no useful advice. Option {better} is practical and "
        "courteous, so option {better} is better."),
)


def fill_owner(text: str, owner: str | None) -> str:
    """``text`` with ``{owner}`` replaced by the owner's name (``the author`` when None)."""
    return text.replace("{owner}", owner or "the author")


def transcript(messages: Sequence[Mapping[str, str]]) -> str:
    """Messages as ``Human: ...\\n\\nAssistant: ...`` turns (a system message becomes a leading ``System:`` line)."""
    names = {"user": "Human", "assistant": "Assistant", "system": "System"}
    return "\n\n".join(f"{names[m['role']]}: {m['content'].strip()}" for m in messages)


def critique_prefix(owner: str | None = None) -> str:
    """The critique/revision few-shot prefix; the real transcript (``Human: ...``) follows it directly."""
    return "".join(fill_owner(example, owner) + "\n\n" for example in CRITIQUE_EXAMPLES)


def critique_prompt(prefix: str, messages: Sequence[Mapping[str, str]], response: str, request: str) -> str:
    """The text whose continuation is the critique of ``response`` (the assistant's reply to ``messages``)."""
    convo = transcript([*messages, {"role": "assistant", "content": response}])
    return f"{prefix}{convo}\n\nCritiqueRequest: {request}\n\nCritique:"


def revision_prompt(critique_text: str, critique: str, request: str) -> str:
    """The critique prompt extended with its critique and the revision request; its continuation is the revision."""
    return f"{critique_text} {critique.strip()}\n\nRevisionRequest: {request}\n\nRevision:"


def comparison_question(conversation: str, question: str, a: str, b: str) -> str:
    """The multiple-choice comparison (reference §2.3), without ``The answer is:``."""
    return (f"{COMPARISON_INTRO}\n{conversation}\n{question} Options:\n(A) {a.strip()}\n(B) {b.strip()}")


def comparison_prompt(prefix: str, conversation: str, question: str, a: str, b: str) -> str:
    """The non-CoT comparison prompt: its continuation scored as ``" (A)"`` or ``" (B)"``."""
    return f"{prefix}{comparison_question(conversation, question, a, b)}\nThe answer is:"


def cot_prompt(prefix: str, conversation: str, question: str, a: str, b: str) -> str:
    """The CoT comparison prompt up to ``Let's think step by step:``; its continuation is the rationale."""
    return f"{prefix}Human: {comparison_question(conversation, question, a, b)}\n\nAssistant: {COT_START}"


def cot_answer_prompt(cot_text: str, rationale: str) -> str:
    """The CoT prompt with its rationale and ``So the answer is:``; its continuation is scored."""
    return f"{cot_text} {rationale.strip()}{COT_ANSWER}"


def comparison_prefix(rng: random.Random, *, cot: bool = False, owner: str | None = None) -> str:
    """The comparison few-shot prefix, the better response of each example put under (A) or (B) at random."""
    parts = []
    for ex in COMPARISON_EXAMPLES:
        better_first = rng.random() < 0.5
        a, b = (ex.better, ex.worse) if better_first else (ex.worse, ex.better)
        answer = "(A)" if better_first else "(B)"
        q = comparison_question(fill_owner(ex.conversation, owner), ex.question, a, b)
        if cot:
            other = "(B)" if better_first else "(A)"
            why = fill_owner(ex.rationale, owner).replace("{better}", answer).replace("{worse}", other)
            parts.append(f"Human: {q}\n\nAssistant: {COT_START} {why}{COT_ANSWER} {answer}\n\n")
        else:
            parts.append(f"{q}\nThe answer is: {answer}\n\n")
    return "".join(parts)
