"""Privacy scrubbing: secrets and personal data in a document replaced by typed placeholders, offline.

Placeholders (``ScrubResult.counts`` is keyed by the name inside the brackets, e.g. ``{"EMAIL": 2}``):

  secrets
    ``<PRIVATE_KEY>``  PEM / OpenSSH / PGP private key blocks, BEGIN through END (through the
                       base64 lines when END is missing), and PuTTY key files
    ``<AWS_KEY>``      AWS access key ids (AKIA, ASIA, ABIA, ACCA, A3T) and 40-character secret
                       keys with entropy >= 4.25 within 300 characters of the word "aws"
    ``<TOKEN>``        provider tokens (GitHub ghp_/gho_/ghu_/ghs_/ghr_/github_pat_, OpenAI sk-,
                       Slack xox?- and hooks.slack.com URLs, Stripe, GitLab glpat-, PyPI, SendGrid,
                       Google AIza), JWTs, Bearer/Basic credentials, token-like URL query parameters
    ``<PASSWORD>``     values of password-like keys in config-like text (``password = ...``,
                       ``PASSWORD: ...``, ``"secret": "..."``, ``DB_PASS=...``, ``--password x``,
                       ``<password>..</password>``) and the password of ``scheme://user:pass@``;
                       passwords, passcodes, passphrases, PINs, door codes and wifi keys stated in
                       words ("my password is hunter2", "pw X", "PIN: 4821", "the wifi password at
                       the cabin is X", "Passwort ist", "mot de passe est", "wachtwoord is",
                       "contraseña es"), with the value after "is", ":", "=", a dash or nothing, and
                       logins ("login root / X", "creds: admin/admin", "sshpass -p X") (``prose``)
    ``<SECRET>``       high-entropy values of other key-like keys (api_key, token, auth, credential,
                       session, cookie, signature ...): detect-secrets' limits (hex > 3.0 bits per
                       character, base64 > 4.5), with a length-scaled limit for values under 40
                       characters (a random n-character string cannot exceed log2(n) bits), except a
                       public key's fingerprint, id or hash on a line that says so ("My GPG key: 3A1F..",
                       "pubkey: <sha256>", "host key: SHA256:.."); api keys, tokens and secrets stated
                       in words ("my api key is X", "token - X") when the value looks random (``prose``)
  personal data
    ``<USERNAME>``     the user half of a login whose password was found ("username segun.adeola, password X",
                       "hannah_b_1990 / X", "postgres://analytics_ro:X@host", "-u ci-pusher -p X"), except
                       default accounts (admin, root, postgres, ...) and the owner's handles (``login_users``)
    ``<EMAIL>``        addresses, except the owner's and allow-listed ones
    ``<PHONE>``        ``+``/``00`` international numbers possible for their country (phonenumbers);
                       national numbers with trunk 0 valid in one of ``phone_regions``; North American
                       3-3-4 numbers written with separators; bare digit runs only after a word like
                       "tel", "phone", "mobile", "call"
    ``<CREDIT_CARD>``  13-19 digits (spaces or dashes between groups) passing Luhn with a card-network
                       prefix; unseparated only at 13-16 digits (longer runs are usually chat/message ids)
    ``<IBAN>``         country code, check digits, 11-30 characters, checked by length and mod-97
    ``<IP_ADDRESS>``   IPv4 and IPv6 (stdlib ``ipaddress``), including private ranges, except the
                       unspecified and loopback addresses, netmasks (255.x) and dotted quads written
                       as versions ("v1.2.3.4", "version 1.2.3.4"); IPv6 needs a digit and clean
                       boundaries, so ``std::vector`` or ``dead::beef`` survive
    ``<ADDRESS>``      "12 Baker Street" (number, 1-4 capitalised words, a street suffix), "Keizersgracht
                       123" / "Hauptstraße 5" (Dutch/German suffixes), "12 rue de la Paix"; a following
                       ", City", "1012 AB", "10115", "SW1A 1AA" or "NY 10001" goes with it
    ``<NAME>``         the people passed to ``scrub``: full names (across particles: "Jane van der
                       Berg"), and their capitalised first/last parts alone, except parts that are
                       also common capitalised words ("Will", "May", "Grace", "Mark"), which go only
                       as part of the full name; handles (entries with digits, or all lower case) as
                       written, with or without "@"; never the owner's names or handles (a part shared
                       with the owner, "Anna" in "Anna Jansen" for owner "Anna de Vries", is kept);
                       titles ("Mr.") are never name parts. And other people named in context
                       (``people.py``, ``scrub(find_names=True)``, off for code): after a greeting
                       ("Hi Priya,", "Dear Mr. Okafor", "Hallo Femke,"), in a sign-off ("Thanks,
                       Tomasz", "Best," over "Lena"), after a title, in a CV's references, after "with",
                       "thanks to", "ask", and @mentions; confirmed by the first/last-name sets of the
                       ``names-dataset`` package (``namesets.py``) and stop lists (team words,
                       weekdays, months, places, products), then replaced wherever else they occur

Kept on purpose (false positives cost more here than the rare leak they would prevent): version
strings, dates, times, hex commit hashes and ``sha256:`` digests, UUIDs, numbers in tables (a run
of numbers is only a phone when it validates as one), short or low-entropy values of key-like keys,
and code that names a secret without holding one (``password=get_password()``, ``token: str``);
sentences about a password ("I forgot my password", "the password is stored in the vault", "the
token budget is 2048", "the EOS token is <|endoftext|>"), and a published organisation's address
("Free Software Foundation, Inc., 51 Franklin Street, Fifth Floor, Boston, MA 02110-1301" in a
licence header; a US ZIP+4 after a state code is never a phone).
Recall on the planted kinds matters most: a leaked key costs more than a lost hash.

Measured on a blind labelled set (``make bench-privacy``, README): recall 0.77-0.85 for secrets in prose and
0.75-0.96 for names by family, so some of both get through.
Not caught: plain dictionary-word passwords in the middle of a clause or after no connector
("password sunshine is what I use"), secrets stated across sentences or in unusual phrasings ("wifi
pw again? -> its X"), keywords in languages other than English, German, Dutch, French, Spanish,
Portuguese, Italian, Swedish and Norwegian, 7-digit local phone numbers ("555-0132"), bare digit
runs without a phone word, names of people not passed in ``people`` and mentioned without context
("I met Priya"), and obfuscated emails ("jane at example dot com").

Modules, one job each:

  ``text``      the byte view of a document, spans, translation tables, entropy helpers
  ``secrets``   private keys, provider tokens, AWS keys, key-value passwords and secrets
  ``prose``     secrets stated in words: passwords, PINs, logins, api keys and tokens in sentences
  ``pii``       emails, phone numbers, credit cards, IBANs, IP addresses, street addresses
  ``names``     the index of other people's names and handles, and their spans
  ``namesets``  first and last names from names-dataset, derived once and cached
  ``people``    names of other people found by context (greetings, sign-offs, references, mentions)
  ``metadata``  metadata values, document paths and reasons scrubbed like text
  ``scrubber``  ``Scrubber``: all finders run once over the view, overlaps resolved by priority
"""

from flaxgpt.ingest.privacy.pii import PHONE_REGIONS
from flaxgpt.ingest.privacy.scrubber import Scrubber, ScrubResult

__all__ = ["PHONE_REGIONS", "ScrubResult", "Scrubber"]
