"""Privacy scrubbing: every secret and PII family replaced, the owner's public details and ordinary text kept."""

from __future__ import annotations

import pickle

import pytest

from flaxgpt.ingest.extract.base import Owner
from flaxgpt.ingest.privacy import Scrubber, ScrubResult

OWNER = Owner(names=("Anna de Vries",), emails=("anna@devries.dev",), handles=("annadv",))
PUBLIC = ("https://devries.dev", "anna.devries@work-example.com", "+31 20 555 0100")

# Secrets are assembled from parts so this file does not itself look like a leaked key to scanners.
GITHUB = "ghp_" + "16C7e42F292c6912E7710c838347Ae178B4a"
GITHUB_FINE = "github_pat_" + "11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUV"
OPENAI = "sk-proj-" + "Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4zAb7cDe0f"
OPENAI_LEGACY = "sk-" + "T9hJk2LmN4pQr6StUv8WxYz0AbCdEfGhIjKlMnOpQrStUvWx"
SLACK = "xoxb-" + "123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"
SLACK_HOOK = "https://hooks.slack.com/services/" + "T01ABCDEF/B02GHIJKL/abcdefGHIJKLmnopqrSTUVwxyz"
STRIPE = "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc"
GITLAB = "glpat-" + "Xy9zAb8cDe7fGh6iJk5l"
PYPI = "pypi-AgEIcHlwaS5vcmc" + "CJGRlYWRiZWVmLWNhZmUtNDJhYi1iZWVmLTEyMzQ1Njc4OTBhYgACKlsz"
SENDGRID = "SG." + "ngeVfQFYQlKU0ufo8x5d1A" + "." + "TwL2iGABf9DHoTf-09kqeF8tAmbihYzrnopKc-1s5cr"
GOOGLE = "AIza" + "SyDaGmWKa4JsXZ-HjGw7ISLn_3namBGewQe"
JWT = ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9" + "." + "eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ"
       + "." + "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c")
AWS_ID = "AKIA" + "Q7XRMB2LK4TZ9WNE"  # the documentation's AKIA...EXAMPLE is a stand-in, kept
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG" + "/bPxRfiCYEXAMPLEKEY"
PEM = ("-----BEGIN RSA PRIVATE KEY-----\n"
       "MIIEpAIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM9Oi8cWqPmO4rlXbGJ8gUHsq1bTnI\n"
       "yA1pQx7Hc2V9dKjLmN0oPq3RsTuVwXyZ4bCdEfGhIjKlMnOpQrStUvWxYz5aBcDe\n"
       "-----END RSA PRIVATE KEY-----")
OPENSSH = ("-----BEGIN OPENSSH PRIVATE KEY-----\n"
           "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
           "QyNTUxOQAAACBk0d1qY2xmbW9yZS1sZXR0ZXJzLWhlcmUtdG8tZmlsbC10aGUtbGluZQ==\n"
           "-----END OPENSSH PRIVATE KEY-----")


@pytest.fixture(scope="module")
def scrubber() -> Scrubber:
    return Scrubber(OWNER, public=PUBLIC)


def scrub(scrubber: Scrubber, text: str, people=()) -> ScrubResult:
    result = scrubber.scrub(text, people)
    # Scrubbing is idempotent: placeholders are never scrubbed again.
    assert scrubber.scrub(result.text, people).text == result.text
    return result


@pytest.mark.parametrize("text, secret, placeholder", [
    (f"aws_access_key_id = {AWS_ID}", AWS_ID, "<AWS_KEY>"),
    (f"aws_secret_access_key={AWS_SECRET}", AWS_SECRET, "<AWS_KEY>"),
    (f"My AWS credentials: {AWS_ID} and {AWS_SECRET} (do not share)", AWS_SECRET, "<AWS_KEY>"),
    (f"export GITHUB_TOKEN={GITHUB}", GITHUB, "<TOKEN>"),
    (f"git clone https://{GITHUB}@github.com/anna/repo.git", GITHUB, "<TOKEN>"),
    (f"token: {GITHUB_FINE}", GITHUB_FINE, "<TOKEN>"),
    (f"OPENAI_API_KEY='{OPENAI}'", OPENAI, "<TOKEN>"),
    (f"old key {OPENAI_LEGACY} still works", OPENAI_LEGACY, "<TOKEN>"),
    (f"bot token {SLACK}", SLACK, "<TOKEN>"),
    (f"curl -X POST {SLACK_HOOK}", "abcdefGHIJKLmnopqrSTUVwxyz", "<TOKEN>"),
    (f"stripe.api_key = \"{STRIPE}\"", STRIPE, "<TOKEN>"),
    (f"gitlab {GITLAB}", GITLAB, "<TOKEN>"),
    (f"password = {PYPI}", PYPI, "<TOKEN>"),
    (f"SENDGRID={SENDGRID}", SENDGRID, "<TOKEN>"),
    (f'{{"key": "{GOOGLE}"}}', GOOGLE, "<TOKEN>"),
    (f"Authorization: Bearer {JWT}", JWT, "<TOKEN>"),
    (f"cookie {JWT}; path=/", JWT, "<TOKEN>"),
])
def test_provider_keys_are_replaced(scrubber, text, secret, placeholder):
    result = scrub(scrubber, text)
    assert secret not in result.text
    assert placeholder in result.text
    assert result.counts[placeholder.strip("<>")] >= 1


@pytest.mark.parametrize("block", [PEM, OPENSSH, PEM.replace("\n", "\\n")])
def test_private_key_blocks_are_replaced_whole(scrubber, block):
    result = scrub(scrubber, f"config:\n{block}\nend of file")
    assert result.text == "config:\n<PRIVATE_KEY>\nend of file"
    assert result.counts == {"PRIVATE_KEY": 1}


def test_private_key_without_end_is_replaced_through_its_base64(scrubber):
    truncated = PEM.rsplit("\n", 1)[0]  # END line lost
    result = scrub(scrubber, f"{truncated}\n\nThanks, the rest of the note.")
    assert result.text == "<PRIVATE_KEY>\n\nThanks, the rest of the note."


def test_putty_key_file_is_replaced(scrubber):
    ppk = ("PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: none\nComment: anna@laptop\nPublic-Lines: 2\n"
           "AAAAC3NzaC1lZDI1NTE5AAAAIBW0k4y\nPrivate-Lines: 1\nAAAAIGS3c2VjcmV0LWtleS1ieXRlcw==\n"
           "Private-MAC: 5b2c1f0e9d8a7b6c5d4e3f2a1b0c9d8e\n")
    result = scrub(scrubber, f"my key:\n{ppk}\nKeep this paragraph.")
    assert result.text == "my key:\n<PRIVATE_KEY>\n\nKeep this paragraph."


@pytest.mark.parametrize("text, kept, secret, placeholder", [
    ("password = \"correct horse battery staple\"", "password = ", "correct horse", "<PASSWORD>"),
    ("PASSWORD: Tr0ub4dor&3", "PASSWORD: ", "Tr0ub4dor", "<PASSWORD>"),
    ('  "secret": "my-little-secret-value",', '"secret": ', "my-little-secret-value", "<PASSWORD>"),
    ("DB_PASS=S3cr3t!", "DB_PASS=", "S3cr3t!", "<PASSWORD>"),
    ("dbPassword := 'hunter2'", "dbPassword := ", "hunter2", "<PASSWORD>"),
    ("mysql --password hunter22 -u root", "--password ", "hunter22", "<PASSWORD>"),
    ("<password>p4ss_w0rd</password>", "<password>", "p4ss_w0rd", "<PASSWORD>"),
    ("the wifi password: Gr33nTea! (ask at the desk)", "the wifi password: ", "Gr33nTea", "<PASSWORD>"),
    ("postgres://admin:hunter2@db.example.com:5432/app", "postgres://admin:", "hunter2", "<PASSWORD>"),
    ("GET https://api.example.com/v1/items?token=abcd1234efgh&page=2", "?token=", "abcd1234efgh", "<TOKEN>"),
    ("https://maps.example.com/api?key=zz81bc0a9d&q=x", "?key=", "zz81bc0a9d", "<TOKEN>"),
    ("api_key = \"3f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c\"", "api_key = ", "3f9a8b7c6d5e", "<SECRET>"),
    ("AUTH_TOKEN: Zx8Qw2Er7Ty5Ui3Op1As9Df4Gh6Jk0Lz", "AUTH_TOKEN: ", "Zx8Qw2Er7Ty5", "<SECRET>"),
    ("session_id=c29tZS1yYW5kb20tc2Vzc2lvbi1pZC0xMjM0NTY=", "session_id=", "c29tZS1yYW5k", "<SECRET>"),
    ("Authorization: Basic dXNlcjpwYXNzd29yZA==", "Authorization: Basic ", "dXNlcjpwYXNz", "<TOKEN>"),
])
def test_config_values_are_replaced_and_keys_kept(scrubber, text, kept, secret, placeholder):
    result = scrub(scrubber, text)
    assert secret not in result.text
    assert kept in result.text and placeholder in result.text
    assert result.text.index(kept) < result.text.index(placeholder)


@pytest.mark.parametrize("text", [
    "def login(password: str, token: str | None = None) -> bool:",
    "password = get_password(user)\nself.password_hash = hash_password(password)",
    "if password == expected_password:\n    return True",
    "api_key = os.environ[\"API_KEY\"]\ntoken = config.token",
    "PASSWORD=${DB_PASSWORD}\nsecret: <SECRET>\npassword: \"\"\ntoken: null",
    "max_tokens_per_shard = 2**28; key = \"name\"; tokenizer = get_tokenizer('gpt2')",
    "pass_rate = 0.95\nsort_key = lambda kv: kv[1]\nkeyboard: us",
    "The secret: practice every day. Your password: choose it well.",
    "api_key = \"example\"  # fill in your own\ntoken = \"short\"",
    "parser.add_argument(\"--password\", help=\"the password\")",
    "PWD=/home/anna/src; cd $(pwd)",
    "Bearer tokens expire; use a bearer annotation when needed.",
])
def test_code_and_prose_that_only_name_secrets_survive(scrubber, text):
    assert scrub(scrubber, text).text == text


@pytest.mark.parametrize("text, secret, placeholder", [
    ("Mail jane.doe+work@example.co.uk today", "jane.doe", "<EMAIL>"),
    ("From: Jane <j.o'neil@mail.example.org>", "o'neil", "<EMAIL>"),
    ("Call me on +31 6 4827 1953.", "4827", "<PHONE>"),
    ("whatsapp +31648271953", "31648271953", "<PHONE>"),
    ("UK office: +44 20 7946 0958", "7946", "<PHONE>"),
    ("dial 0031 6 48271953 from abroad", "48271953", "<PHONE>"),
    ("US: (415) 555-0132 or 415.555.0199", "555-0132", "<PHONE>"),
    ("toll free 1-800-555-0199", "555-0199", "<PHONE>"),
    ("Berlin +49 (0)30 1234 5678", "1234 5678", "<PHONE>"),
    ("UK mobile 07700 900123", "900123", "<PHONE>"),
    ("London 020 7946 0958", "7946", "<PHONE>"),
    ("mobiel 06-48271953", "48271953", "<PHONE>"),
    ("phone: 4155550132", "4155550132", "<PHONE>"),
    ("Card 4111 1111 1111 1111 exp 12/29", "4111", "<CREDIT_CARD>"),
    ("mc 5555-5555-5555-4444", "5555", "<CREDIT_CARD>"),
    ("amex 378282246310005", "378282246310005", "<CREDIT_CARD>"),
    ("IBAN NL91 ABNA 0417 1643 00.", "0417", "<IBAN>"),
    ("pay to DE89370400440532013000", "370400440532013000", "<IBAN>"),
    ("GB82 WEST 1234 5698 7654 32", "5698", "<IBAN>"),
    ("server 203.0.113.45:8080", "203.0.113.45", "<IP_ADDRESS>"),
    ("router at 192.168.1.10", "192.168.1.10", "<IP_ADDRESS>"),
    ("host 2001:db8::8a2e:370:7334 is up", "8a2e", "<IP_ADDRESS>"),
    ("link-local fe80::1ff:fe23:4567:890a", "fe23", "<IP_ADDRESS>"),
    ("I live at 42 Elm Street, Springfield, IL 62704.", "Elm Street", "<ADDRESS>"),
    ("221B Baker Street, London NW1 6XE", "Baker", "<ADDRESS>"),
    ("1600 Pennsylvania Avenue NW, Washington, DC 20500", "Pennsylvania", "<ADDRESS>"),
    ("Keizersgracht 123, 1015 CJ Amsterdam", "Keizersgracht", "<ADDRESS>"),
    ("Hauptstraße 5, 10115 Berlin", "Hauptstraße", "<ADDRESS>"),
    ("we moved to Stationsweg 12a", "Stationsweg", "<ADDRESS>"),
    ("Dorpslaan 4", "Dorpslaan", "<ADDRESS>"),
    ("12 rue de la Paix, 75002 Paris", "Paix", "<ADDRESS>"),
    ("postcode 1012 AB Amsterdam", "1012 AB", "<ADDRESS>"),
])
def test_personal_data_is_replaced(scrubber, text, secret, placeholder):
    result = scrub(scrubber, text)
    assert secret not in result.text, result.text
    assert placeholder in result.text


@pytest.mark.parametrize("text", [
    "Released v1.2.3 on 2024-01-15 at 12:30:45 (build 2024.01.15).",
    "commit 3f2a9c1d8e7b6a5f4e3d2c1b0a9f8e7d6c5b4a3f fixed it; see 3f2a9c1.",
    "image sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 pushed",
    "id 123e4567-e89b-12d3-a456-426614174000 and 550e8400-e29b-41d4-a716-446655440000",
    "| size | 1024 2048 4096 8192 | 3.14159 | 0.25 0.125 0.0625 | 1,234,567 |",
    "On 12/03/2024 we had 250 people; ISBN 978-3-16-148410-0; call 911; port 8080.",
    "localhost 127.0.0.1, bind 0.0.0.0, mask 255.255.255.0, ::1, version 1.0.0.1, v2.4.0.1",
    "a chat log's time [07.05.2025 22:10] is no phone number",
    "std::vector<int> v; Foo::Bar::baz(); dead::beef; a::b::c",
    "Timestamps 1700000000 and 1700000000.123456 and ids 1234567890123456789.",
    "See https://example.com/docs?page=2#intro and git@github.com:anna/repo.git and icon@2x.png",
    "The quick brown fox jumps over the lazy dog. Big Data Street Team won 3 Awards.",
    "import numpy as np\nx = np.arange(10_000).reshape(100, 100)\nprint(x[5:10, 2])",
    "Not a card: 4111 1111 1111 1112. Not an IBAN: NL91 ABNA 0417 1643 01.",
    "Pi is 3.14159265358979 and e is 2.71828182845904.",
])
def test_ordinary_text_and_code_survive(scrubber, text):
    result = scrub(scrubber, text)
    assert result.text == text, result.text
    assert result.counts == {}


def test_slack_mailto_links_lose_both_addresses(scrubber):
    result = scrub(scrubber, "<mailto:jane@example.com|jane@example.com>")
    assert result.text == "<mailto:<EMAIL>|<EMAIL>>"


def test_owner_and_public_details_are_kept(scrubber):
    text = ("Anna de Vries <anna@devries.dev>, https://devries.dev, work: Anna.Devries@work-example.com, "
            "office +31 20 555 0100 (also 020 555 0100), @annadv. Ask bob@example.org.")
    result = scrub(scrubber, text, people=("Anna de Vries", "annadv", "Bob Jones"))
    assert result.text == text.replace("bob@example.org", "<EMAIL>")
    assert result.counts == {"EMAIL": 1}


def test_people_names_are_replaced_but_not_the_owners(scrubber):
    text = ("Bob Smith wrote to Anna. Later Bob and Ms Smith met Jane van der Berg, and Smith's car broke. "
            "bob is lower case. Will Summer joined; Will you come? Hi @jdoe42 and @Annadv!")
    result = scrub(scrubber, text, people=("Bob Smith", "Jane van der Berg", "Will Summer", "jdoe42", "Anna de Vries"))
    assert result.text == ("<NAME> wrote to Anna. Later <NAME> and Ms <NAME> met <NAME>, and <NAME>'s car broke. "
                           "bob is lower case. <NAME> joined; Will you come? Hi <NAME> and @Annadv!")
    assert result.counts == {"NAME": 7}


def test_a_name_part_shared_with_the_owner_is_kept(scrubber):
    result = scrub(scrubber, "Anna Jansen and Anna de Vries", people=("Anna Jansen",))
    assert result.text == "Anna <NAME> and Anna de Vries"


def test_everything_in_one_document_with_unicode_offsets(scrubber):
    text = ("Héllo 😀 — 東京 note. Mail jane@example.com, call +31 6 4827 1953, key " + GITHUB
            + ".\nNaïve café at Keizersgracht 123. 💳 4111-1111-1111-1111 ✓ Bob.")
    result = scrub(scrubber, text, people=("Bob Jones",))
    assert result.text == ("Héllo 😀 — 東京 note. Mail <EMAIL>, call <PHONE>, key <TOKEN>.\n"
                           "Naïve café at <ADDRESS>. 💳 <CREDIT_CARD> ✓ <NAME>.")
    assert result.counts == {"EMAIL": 1, "PHONE": 1, "TOKEN": 1, "ADDRESS": 1, "CREDIT_CARD": 1, "NAME": 1}


def test_overlaps_go_to_the_secret(scrubber):
    result = scrub(scrubber, "DATABASE_URL=postgres://anna:s3cret-Pw@10.0.0.12/app")
    assert result.text == "DATABASE_URL=postgres://anna:<PASSWORD>@<IP_ADDRESS>/app"  # the owner's own user name


@pytest.mark.parametrize("text, expected", [
    ("My portal login: username segun.adeola, password Naija@2019.",
     "My portal login: username <USERNAME>, password <PASSWORD>."),
    ("found the post-it: hannah_b_1990 / Chamomile22", "found the post-it: <USERNAME> / <PASSWORD>"),
    ("log in as qa_maria with Sunflower!23", "log in as <USERNAME> with <PASSWORD>"),
    ("docker login reg.example -u ci-pusher -p Hx7!Rm2qTz9", "docker login reg.example -u <USERNAME> -p <PASSWORD>"),
    ("Usuario: lgarcia_v\nContraseña: Paella!Valencia88", "Usuario: <USERNAME>\nContraseña: <PASSWORD>"),
    ("usuário da VPN é pedro.s.ext e a senha é Cachoeira_2024", "usuário da VPN é <USERNAME> e a senha é <PASSWORD>"),
    # default accounts, the owner's handle and a network's name stay
    ("router login is admin/Passw0rd!x", "router login is admin/<PASSWORD>"),
    ("login annadv / Fjord!Lake22", "login annadv / <PASSWORD>"),
    ("vpn: anna.devries / Fjord!Lake22", "vpn: anna.devries / <PASSWORD>"),
    ("wifi: HomeNet-5G / Tr0pical!Fish", "wifi: HomeNet-5G / <PASSWORD>"),
    # ... and after the password, in a Windows domain, labelled with "u:"/"p:", in an sftp URL with a "#"
    ("passphrase for the jump host is 'moss grows north'; user is bastion-ops",
     "passphrase for the jump host is '<PASSWORD>'; user is <USERNAME>"),
    ("Work laptop: DOMAIN\\aokonkwo, Autumn2025! — IT", "Work laptop: <USERNAME>, <PASSWORD> — IT"),
    ("u: mdoyle88 p: coffeeandcats", "u: <USERNAME> p: <PASSWORD>"),
    ("sftp://media_upload:Kq9#vB2z@files.example", "sftp://<USERNAME>:<PASSWORD>@files.example"),
    ("Tenant portal is werkplaats_12b / Rooftop!Garden", "Tenant portal is <USERNAME> / <PASSWORD>"),
    ("def login(user: str, password: str) -> Session:", "def login(user: str, password: str) -> Session:"),
])
def test_the_user_half_of_a_login_is_replaced(scrubber, text, expected):
    assert scrub(scrubber, text).text == expected


def test_a_public_persons_surname_alone_is_kept():
    scrubber = Scrubber(OWNER, public=("Donald Knuth",))
    assert scrubber.scrub("Prof. Knuth's cheques, and Dr. Okafor's").text == "Prof. Knuth's cheques, and Dr. <NAME>'s"


def test_empty_and_clean_text(scrubber):
    assert scrubber.scrub("") == ScrubResult("", {})
    assert scrubber.scrub("nothing to see here") == ScrubResult("nothing to see here", {})


def test_scrubber_pickles_for_worker_processes(scrubber):
    clone = pickle.loads(pickle.dumps(scrubber))
    text = f"jane@example.com {GITHUB} Bob Smith"
    assert clone.scrub(text, ("Bob Smith",)) == scrubber.scrub(text, ("Bob Smith",))


def test_stem_search_finds_what_bytes_find_finds() -> None:
    """The one-pass keyword search gives each stem's non-overlapping occurrences, as repeated bytes.find does,
    for stems asked for before the text was scanned and for a stem new to the process."""
    from flaxgpt.ingest.privacy.text import _View

    def scan(lo: bytes, stem: bytes) -> list[int]:
        found, i = [], lo.find(stem)
        while i >= 0:
            found.append(i)
            i = lo.find(stem, i + len(stem))
        return found

    _View("warm up").find_all(b"aa")  # registers b"aa" for the next texts
    text = "Aaaa PASSWORD aaa: passpass, the pass; Ünïcödé pass"
    view = _View(text)
    for stem in (b"aa", b"pass", b"password", b"zz-new-stem-zz", b"\xfcn"):
        assert view.find_all(stem) == scan(text.encode("latin-1").lower(), stem), stem
    assert _View("zz-new-stem-zz zz-new-stem-zz").find_all(b"zz-new-stem-zz") == [0, 15]


def test_case_view_candidates_are_what_the_regex_scans_find() -> None:
    """after_candidates (numpy) gives each AFTER_* regex's finditer positions, overlaps and all, on random case
    views made of the characters that matter."""
    import random

    from flaxgpt.ingest.privacy import case_view as cv

    rng = random.Random(0)
    for _ in range(3000):
        view = bytes(rng.choice(b"aaaAA  ./,\nx") for _ in range(rng.randint(0, 40)))
        expected = [[m.start() + offset for m in pattern.finditer(view)]
                    for pattern, offset in (cv.AFTER_WORD, cv.AFTER_SHORT, cv.AFTER_INITIAL, cv.AFTER_SLASH)]
        assert cv.after_candidates(view) == expected, view
