"""Secrets stated in words ("my password is X", "PIN: 4821", "login root / X"), the two false positives fixed
(public-key fingerprints, licence addresses), and the labelled set scored the way `make bench-privacy` does."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from flaxgpt.ingest.extract.base import Owner
from flaxgpt.ingest.privacy import Scrubber

ROOT = Path(__file__).resolve().parents[1]
SETS = ROOT / "bench" / "privacy"
SECRET_FAMILIES = ("prose_password", "prose_pin", "prose_api_key", "login", "kv_password", "kv_secret")


def _bench():
    """bench/privacy_bench.py (bench/ is not an installed package)."""
    if "privacy_bench" not in sys.modules:
        spec = importlib.util.spec_from_file_location("privacy_bench", ROOT / "bench" / "privacy_bench.py")
        sys.modules["privacy_bench"] = module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return sys.modules["privacy_bench"]


@pytest.fixture(scope="module")
def scrubber() -> Scrubber:
    return Scrubber(Owner(names=("Noor Aksoy",), emails=("noor@aksoy.example",), handles=("naksoy",)))


@pytest.mark.parametrize("text, secret, kept, placeholder", [
    # prose_password, in chat, mail, notes, code comments and other languages
    ("my password is hunter2", "hunter2", "my password is ", "<PASSWORD>"),
    ("password Hunt3r!x", "Hunt3r!x", "password ", "<PASSWORD>"),
    ("pw K9x!mm2", "K9x!mm2", "pw ", "<PASSWORD>"),
    ("passcode is 739204", "739204", "passcode is ", "<PASSWORD>"),
    ("the wifi password is Gr33nTea2024", "Gr33nTea2024", "the wifi password is ", "<PASSWORD>"),
    ("The password for the NAS is n4s-Adm1n!, don't share", "n4s-Adm1n!", "don't share", "<PASSWORD>"),
    ("My password is sunshine.", "sunshine", "My password is ", "<PASSWORD>"),
    ("I changed the wifi password to Tropical88 yesterday", "Tropical88", " yesterday", "<PASSWORD>"),
    ("the passphrase is correct horse battery staple", "horse battery", "the passphrase is ", "<PASSWORD>"),
    ("for now my password\nis Vi0la-Cloud-23 until IT", "Vi0la-Cloud-23", "my password\nis ", "<PASSWORD>"),
    ("# TODO remove: password is dev-Pa55word", "dev-Pa55word", "# TODO remove: password is ", "<PASSWORD>"),
    ("Das WLAN-Passwort lautet Sonnenblume42.", "Sonnenblume42", "Das WLAN-Passwort lautet ", "<PASSWORD>"),
    ("Le mot de passe est soleil2020", "soleil2020", "Le mot de passe est ", "<PASSWORD>"),
    ("het wachtwoord is fietsbel77", "fietsbel77", "het wachtwoord is ", "<PASSWORD>"),
    ("la contraseña es Gato#2023", "Gato#2023", "la contraseña es ", "<PASSWORD>"),
    # prose_pin
    ("PIN: 4821", "4821", "PIN: ", "<PASSWORD>"),
    ("the door code is 1984# and the key is under the mat", "1984", "the key is under the mat", "<PASSWORD>"),
    ("mijn pincode is 1207", "1207", "mijn pincode is ", "<PASSWORD>"),
    ("the code for the bike shed is 5512", "5512", "the code for the bike shed is ", "<PASSWORD>"),
    # prose_api_key
    ("my api key is a8f3kd92jf0slq2", "a8f3kd92jf0slq2", "my api key is ", "<SECRET>"),
    ("token - 8f3kd92jf0sl", "8f3kd92jf0sl", "token - ", "<SECRET>"),
    ("the client secret is 3XgQ9v1Lk2Pz8Rw4Mn7T", "3XgQ9v1Lk2Pz8Rw4Mn7T", "the client secret is ", "<SECRET>"),
    ("Der API-Schlüssel ist 6f1ed002ab5595859014.", "6f1ed002ab5595859014", "Der API-Schlüssel ist ", "<SECRET>"),
    # login
    ("login root / Tr0ub4dor", "Tr0ub4dor", "login root / ", "<PASSWORD>"),
    ("creds: admin/admin", "admin/admin", "creds: admin/", "<PASSWORD>"),
    ("wifi: HomeNet-5G / Tr0pical!Fish", "Tr0pical!Fish", "wifi: HomeNet-5G / ", "<PASSWORD>"),
    ("sshpass -p 'Ssh!Pass88' ssh deploy@host", "Ssh!Pass88", "sshpass -p '", "<PASSWORD>"),
])
def test_secrets_stated_in_words_are_replaced_and_the_sentence_kept(scrubber, text, secret, kept, placeholder):
    result = scrubber.scrub(text)
    assert secret not in result.text, result.text
    assert kept in result.text and placeholder in result.text, result.text
    assert scrubber.scrub(result.text).text == result.text  # placeholders are never scrubbed again


@pytest.mark.parametrize("text", [
    "I forgot my password",
    "password managers are great, everyone should use one",
    "reset your password here",
    "the token budget is 2048",
    "the API key is stored in the vault",
    "the password is in 1Password",
    "passwords must be 12 characters or longer",
    "my password is wrong apparently",
    "Your password: choose it well.",
    "Password: see the shared vault entry",
    "I gave my password to the IT desk.",
    "The EOS token is <|endoftext|> and its id is 50256.",
    "token 50256 is the end-of-text marker",
    "def refresh(token: Optional[str] = None):",
    "user, pw = auth, None",
    "the secret sauce is a good data pipeline",
    "connect the LED to pin 13",
    "the PIN is 4 digits long",
    "error code 1045 access denied",
    "login via SSO/OAuth",
    "login: email / password",
    "so 1 pass is sufficient.",
    "password strength meter v2.3.1 released",
    "PASSWORD_RESET_TIMEOUT = 3600",
    "password: !vault |",
    "Das Passwort ist falsch.",
    # the two false positives fixed: public-key fingerprints next to "key", licence addresses in code comments
    "You can verify my releases with my public key: 3a1f9c2b7d4e11f08b3c5e6a2d9f4c7b1e8a0f53",
    "My GPG key: 3A1F9C2B7D4E11F08B3C5E6A2D9F4C7B1E8A0F53",
    "The key fingerprint is 3A1F 9C2B 7D4E 11F0 8B3C  5E6A 2D9F 4C7B 1E8A 0F53.",
    "pubkey: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "host key: SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8",
    "the release signing key (public): 0x4AEE18F83AFDEB23",
    "# along with this program; if not, write to the Free Software\n"
    "# Foundation, Inc., 51 Franklin Street, Fifth Floor, Boston, MA 02110-1301 USA",
    "/*\n * along with this library; if not, write to the Free Software\n"
    " * Foundation, Inc., 51 Franklin St, Fifth Floor, Boston, MA  02110-1301  USA\n */",
    " * Foundation, Inc., 59 Temple Place, Suite 330, Boston, MA 02111-1307 USA",
    "# Free Software Foundation, Inc., 675 Mass Ave, Cambridge, MA 02139, USA.",
    # numbers near lock words that state no code; licence words without a key; passwords in general,
    # section numbers and SSH public keys
    "error code 1045 again, the db is down",
    "the API returns code 200 when it works",
    "el código postal es 28013, por si lo necesitas",
    "The postcode is 1017 AB, right by the canal.",
    "boarding at gate 23, seat 14C",
    "my locker is number 12 on the left",
    "cash box at the club: counted 212 euro on friday",
    "Licensed under the Apache License, Version 2.0 (the License)",
    "license: MIT, see LICENSE for details",
    "TIL the most common password in leaked dumps is still 123456",
    "Reset password flow is broken on Safari, ticket FE-2291",
    "see section 4.4.7.1 of the spec for the timing diagram",
    "public key: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJxRhHISpj8GlAdqIXJ12LVOn1ZVlG6trzswUfROPSOm laptop",
    # Seventh round: examples, masks and placeholders, scores, advice about defaults.
    "the hint under the field says 'e.g. Tr0ub4dor&3' from the comic",
    "webhook url: https://hooks.slack.com/services/XXXX/YYYY/ZZZZ (placeholder)",
    "api key: sk-...4f2a (last 4 shown in the dashboard)", "docs example: `client_secret=REPLACE_ME` then deploy",
    "zxcvbn gave my new password a 4/4", "never leave admin/admin on a production router",
    "my password is up-to-date",
    "Passordet ditt er utløpt. Logg inn for å velge et nytt.", "kildekoden er 2024 linjer", "this one is v2beta3 now",
    "the wifi is down again", "it's v2beta3, not v2beta4",
    "The password hint is 'favourite teacher', which could be anyone",
    "Ich habe mein Passwort vergessen und muss es jetzt zurücksetzen, super nervig.",
    "Your PIN must be 4–6 digits and can't be a sequence like 1234.",
    "The lock only has a 3-digit dial, so 1000 combinations",
    "the wifi is HomeNet", "the alarm 2024 report is out", "Never share your password with anyone.",
    "use python3 not python2", "Try max_tokens=512 and temperature=0.2", "type your name then press enter",
    "Try Llama3 or gpt2-medium-355M-finetuned-v2 instead",
])
def test_sentences_that_only_mention_secrets_fingerprints_and_licence_addresses_survive(scrubber, text):
    result = scrubber.scrub(text)
    assert result.text == text and result.counts == {}


# ... without losing recall: hex keys with no public-key context, personal addresses (their ZIP+4 no phone).
@pytest.mark.parametrize("text, secret, placeholder", [
    ("secret key: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", "9f86d081884c7d659a2f", "SECRET"),
    ("key: 7c4a8d09ca3762af61e59520943dc26494f8941b", "7c4a8d09ca3762af61e5", "SECRET"),
    ("api_key = \"3f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c\"", "3f9a8b7c6d5e4f3a2b1c", "SECRET"),
    ("I live at 42 Elm Street, Springfield, IL 62704.", "Elm Street", "ADDRESS"),
    ("Ship to: 59 Temple Place, Suite 330, Boston, MA 02111-1307", "Temple Place", "ADDRESS"),
    ("my new flat: Hauptstraße 5, 10115 Berlin", "Hauptstraße", "ADDRESS"),
])
def test_hex_keys_and_personal_addresses_are_still_replaced(scrubber, text, secret, placeholder):
    result = scrubber.scrub(text)
    assert secret not in result.text and result.counts == {placeholder: 1}, result.text


def test_the_labelled_secret_set_meets_the_targets():
    bench = _bench()
    rows = [r for r in bench.load_rows(SETS) if r["set"] == "secrets"]
    owner, public = bench.load_owner(SETS / "owner.json")
    scores = bench.score_rows(rows, Scrubber(owner, public=public))
    assert len(rows) >= 300
    for family in SECRET_FAMILIES:
        s = scores["secrets", family]
        assert s.positives >= 5 and s.negatives >= 5, family
        assert s.recall >= bench.RECALL_TARGET, (family, s.misses)
    negatives = sum(s.negatives for s in scores.values())
    false_positives = sum(s.false_positives for s in scores.values())
    assert false_positives <= bench.FP_TARGET * negatives, [t for s in scores.values() for t in s.fps]


def test_scoring_counts_leaks_false_positives_and_lost_keeps(scrubber, tmp_path):
    bench = _bench()
    rows = [
        {"text": "my password is hunter2", "family": "f", "leak": ["hunter2"], "keep": ["my password is"]},
        {"text": "the wifi password is Xy12!ab", "family": "f", "leak": ["sunshine"], "keep": []},  # leak absent
        {"text": "token 8f3kd92jf0sl is fine", "family": "f", "leak": [], "keep": ["is fine"]},  # a hard negative
        {"text": "I forgot my password", "family": "f", "leak": [], "keep": []},
    ]
    s = bench.score_rows(rows, scrubber)[("", "f")]
    assert (s.positives, s.found, s.negatives, s.false_positives) == (2, 2, 2, 1)
    assert (s.recall, s.fp_rate, s.precision) == (1.0, 0.5, 2 / 3)
    assert (s.keep_rows, s.keep_ok) == (2, 2)
    # A hard negative of a secret family counts a secret's placeholder; a phone number replaced by policy is
    # counted apart, and a <NAME> is what a name family's negative counts.
    rows = [
        {"text": "call me at +44 20 7946 0958 when at the gate", "family": "prose_pin", "leak": [], "keep": []},
        {"text": "the gate code changed to 4417#", "family": "prose_pin", "leak": [], "keep": []},
        {"text": "Hi Priya, the gate code changed", "family": "greeting", "leak": [], "keep": []},
    ]
    scores = bench.score_rows(rows, scrubber)
    pin, greeting = scores[("", "prose_pin")], scores[("", "greeting")]
    assert (pin.negatives, pin.false_positives, pin.other_pii) == (2, 1, 1)
    assert (greeting.false_positives, greeting.other_pii) == (1, 0)


def test_a_bad_labelled_row_is_named_by_file_line_and_field(tmp_path):
    bench = _bench()
    good = {"text": "pw hunter2x", "family": "prose_password", "leak": ["hunter2x"], "keep": []}
    (tmp_path / "a.jsonl").write_text(json.dumps(good) + "\n" + json.dumps({**good, "leak": ["absent"]}) + "\n")
    with pytest.raises(bench.LabelError, match=r"a\.jsonl:2: field 'leak' names 'absent'"):
        bench.load_rows(tmp_path)
    (tmp_path / "a.jsonl").write_text(json.dumps({**good, "keep": "x"}) + "\n")
    with pytest.raises(bench.LabelError, match=r"a\.jsonl:1: field 'keep'"):
        bench.load_rows(tmp_path)


def test_persona_false_positives_exclude_planted_canaries(scrubber, tmp_path):
    bench = _bench()
    (tmp_path / "notes.txt").write_text("The token is 8f3kd92jf0sl for the demo.\n\n"
                                        "Keys: AKIAQ7XRMB2LK4TZ9WNE was rotated last week.\n\n"
                                        "The password manager is great. I forgot my password.\n")
    total, fps = bench.persona_false_positives(scrubber, tmp_path, ["AKIAQ7XRMB2LK4TZ9WNE"])
    assert total == 4
    assert len(fps) == 1 and "8f3kd92jf0sl" in fps[0]


# Held-out misses' patterns, rephrased: the value a few words after its keyword, past qualifiers.
@pytest.mark.parametrize(("text", "secret"), [
    ("login for jenkins is admin admin", "admin admin"),
    ("psswrd for the tablet is now Heron-Dusk-4", "Heron-Dusk-4"),
    ("apikey for the tiles service (trial) 9b2d4f6a8c0e1a3b5d7f", "9b2d4f6a8c0e1a3b5d7f"),
    ("the gate code is 7-3-1-8, close it behind you", "7-3-1-8"),
    ("shed combo is 45-12-09", "45-12-09"),
    ("curl -u deploy:Xp7qR2mZ9w https://ci.internal/status", "Xp7qR2mZ9w"),
    ("for the NAS it's root:toor", "toor"),
    ("keep the db password (swordfish9) out of the repo", "swordfish9"),
    # Forms the second round generalised (rephrased, not the held-out rows): codes written in groups or words, the
    # value before its keyword, codes that open things in other languages, credential labels inside logins, dotted
    # passwords, passphrases with a number, vendor-prefixed keys, non-ASCII compounds ("Türcode", "hasło").
    ("the storage unit code is 4 0 7 2, then press #", "4 0 7 2"),
    ("De pincode van de fietskluis is 31 07 19", "31 07 19"),
    ("keybox code: seven-one-one-four", "seven-one-one-four"),
    ("Der Garagencode für hinten lautet 2 2 9 8", "2 2 9 8"),
    ("Il codice del portone è 6120", "6120"),
    ("Code portail : 7731, merci", "7731"),
    ("the padlock opens with 09-31-22", "09-31-22"),
    ("8841 is the PIN for the card", "8841"),
    ("Rt7#kq2Lp is the password for the kiosk", "Rt7#kq2Lp"),
    ("I went with Maple!Stream8 as the admin password", "Maple!Stream8"),
    ("f3Kq9Lz2Wm8Xp4Rt7Vb1 is the key for the maps api", "f3Kq9Lz2Wm8Xp4Rt7Vb1"),
    ("creds for the kiosk -> u: frontdesk p: Qq4!lamp", "Qq4!lamp"),
    ("log in as visitor with visit0r99 at the desk", "visit0r99"),
    ("password for the shared photo library: Birch.Lane.2011", "Birch.Lane.2011"),
    ("the backup passphrase is velvet canyon 2044, no quotes", "velvet canyon 2044"),
    ("export MAPTILES_KEY=mtk_9f2c4e6a8b0d1f3e5a7c9b2d4f6e8a0c", "9f2c4e6a8b0d1f3e5a7c9b2d4f6e8a0c"),
    ("the zip password is 'biscuits'", "biscuits"),
    ("pasword for the printer is Toner55x", "Toner55x"),
    # Third round (rephrased from a development set written blind): combinations and codes in more languages and
    # after their opener, spelled and all-digit passcodes, bearer tokens, several values after a plural keyword,
    # licence keys, chat bot tokens, webhook URLs, a key right after its keyword, values after "are both" or a
    # description and a colon, default users "as admin with X", user / password pairs after a label.
    ("La combinación del candado es 5-1-9", "5-1-9"),
    ("Kluiscode in het hotel: 4412", "4412"),
    ("o código da garagem é 7781#", "7781"),
    ("Lab alarm gets armed at 8pm; code 3344 to disarm", "3344"),
    ("the laptop passcode is nine one one four two", "nine one one four two"),
    ("Passcode for the storage room door = 830217", "830217"),
    ("bearer for the billing api: bil_k8Q2mZ7xR4wT9pL3", "bil_k8Q2mZ7xR4wT9pL3"),
    ("tokens: staging stg_7Hq2Kx9Lm4Pz, prod prd_3Wn8Rb5Tc2Yj", "stg_7Hq2Kx9Lm4Pz prd_3Wn8Rb5Tc2Yj"),
    ("the licence key is QX-4821-ZKTM-0937-PWRB", "QX-4821-ZKTM-0937-PWRB"),
    ("token for the alerts bot: 553019274:QWe-Rt5Yu7Io9Pa2Sd4Fg6Hj8", "QWe-Rt5Yu7Io9Pa2Sd4Fg6Hj8"),
    ("build webhook: https://hooks.example.net/services/Q1W2E3R4/T5Y6U7I8/aB3cD4eF5gH6iJ7k", "aB3cD4eF5gH6iJ7k"),
    ("monitoring key 2c7f9e1a4b8d3f6a0e5c9b2d7f1a4e8c3b6d0f9a for the dashboards", "2c7f9e1a4b8d3f6a0e5c"),
    ("db pass and cache pass are both Moss#Stone44 for now", "Moss#Stone44"),
    ("the nas password is the same as the router one: nasRouter_Otter7", "nasRouter_Otter7"),
    ("telnet in as admin with Blue#Fern22", "Blue#Fern22"),
    ("gitlab: mhoffmann / Tq8!vRz2Lp", "Tq8!vRz2Lp"),
    ("printer panel: operator + Pr1nt#Room", "Pr1nt#Room"),
    # Fourth round: a password by its shape alone, with no keyword near.
    ("I changed it to Harbor!Gull62 yesterday", "Harbor!Gull62"),
    ("try 'Maple&Fern_27' — I swapped the old one out", "Maple&Fern_27"),
    # Fifth round: codes in Nordic, French and Polish words, codes after "*" or "#", an alarm label, values set
    # without naming the secret, keys by their look alone.
    ("Dörrkoden är 5512 sedan i fredags", "5512"),
    ("le digicode c'est B3390", "B3390"),
    ("Kod do domofonu to 6621", "6621"),
    ("The gate code is *7120 then the bell", "7120"),
    ("alarm: 4-8-1-6, panel by the stairs", "4-8-1-6"),
    ("I changed it to marigold1984 last night", "marigold1984"),
    ("the shed laptop unlocks with fern&moss44", "fern&moss44"),
    ("run it with 9Kq2Lm7RtVz4Kp8Nb1Xc6Jd3Fs when it asks", "9Kq2Lm7RtVz4Kp8Nb1Xc6Jd3Fs"),
    # Seventh round: words joined by hyphens, and capitalised words ending in a number after ":".
    ("passphrase is glacial-umbrella-pepper-tide", "glacial-umbrella-pepper-tide"),
    ("master pw (printed copy in the safe): Harbor Lights Over Kestrel Bay 9", "Harbor Lights Over Kestrel Bay 9"),
    # ... keywords and copulas of more languages, values on the next line, in Markdown emphasis, after "one is",
    # a quoted phrase a vault opens with, Oracle connect strings, Databricks tokens.
    ("adgangskoden til routeren er Rugbrød!2023", "Rugbrød!2023"), ("heslo na wifi je Knedlik_s_Zelim9", "Knedlik"),
    ("mökin salasana on revontuli-Sauna-12", "revontuli-Sauna-12"), ("le mot de passe est lapinbleu93", "lapinbleu93"),
    ("az API kulcs e10cd79e048c07dd7753eda83d7c58df, ne tedd ki", "e10cd79e048c07dd7753eda83d7c58df"),
    ("uživatel: sklad, heslo: Medvidek_Pu9", "Medvidek_Pu9"), ("koden til postkassen er 0912", "0912"),
    ("ev alarmının kodu 1905, kapıyı açınca", "1905"), ("codice bancomat 80431, prendi pure 100", "80431"),
    ("Passwort fürs Gäste-WLAN\nSommerwiese_55\nbitte nicht weitergeben", "Sommerwiese_55"),
    ("password is **Quasar!Moth** (bold so you see it)", "Quasar!Moth"),
    ("remember to change it, current one is Winterfell2025", "Winterfell2025"),
    ("keepass db opens with 'drift wood lantern fig'", "drift wood lantern fig"),
    ("oracle: system/Manager#19c@//orahost:1521/ORCLPDB1", "Manager#19c"),
    ("databricks PAT dapi4e095bd1d6854575622f856469602d1b", "dapi4e095bd1d6854575622f856469602d1b"),
    ("what's the wifi? -> BlueFalcon88", "BlueFalcon88"), ("sorry, it's Lantern9 not Lantern6", "Lantern9 Lantern6"),
    ("password is my dog's name + 2015 (Biscuit2015)", "Biscuit2015"),
    # Round 8 (dev8): answers on the next line, words run together, "passworded with", corrections in other
    # languages, instructions that use a secret, lock codes after an emoji, alarms and padlocks.
    ("me: whats the wifi pw\nher: marmalade!skies (all lowercase)", "marmalade!skies"),
    ("can u resend the printer pw\n\nits inkjetdrama123, all one word", "inkjetdrama123"),
    ("Password on the wedding spreadsheet = JuneNineteen (yes)", "JuneNineteen"),
    ("the Kindle is passworded with mothwing88.", "mothwing88"),
    ("c'est Lavande44 et pas Lavande45.", "Lavande44 Lavande45"),
    ("To unlock the USB, type sunflowerfield then press enter twice", "sunflowerfield"),
    ("you'll need Kestrel_on_the_wire to open it", "Kestrel_on_the_wire"),
    ("the password for the gallery is ivyandjoss no spaces", "ivyandjoss"),
    ("Sorry — door code is 2794 not 2749, I swapped", "2794 2749"), ("building entry 👉 *0417 then bell", "0417"),
    ("Tell the cleaner: alarm 3390, door code same as before", "3390"), ("Cadeado do armário: 7-1-0.", "7-1-0"),
    ("Telegram bot: 6182937450:AAGq7Lx2Vz9Tm4Kw0Rp8Hc3Bn6Jd1Fe5Ysq", "AAGq7Lx2Vz9Tm4Kw0Rp8Hc3Bn6Jd1Fe5Ysq"),
    ("this expired: xapp-1-A06KQ2PLM-6618274930-9f2c7a1e4d8b", "xapp-1-A06KQ2PLM-6618274930-9f2c7a1e4d8b"),
    ("I set it to user 'office' pass 'tonerlow' because it always is", "tonerlow"),
])
def test_prose_window_finds_values_past_qualifiers(scrubber: Scrubber, text: str, secret: str) -> None:
    out = scrubber.scrub(text, find_names=False).text
    assert all(part not in out for part in secret.split()), out


@pytest.mark.parametrize("text", [
    "We hash passwords with argon2id and a per-user salt.",
    "Pass `--verbose` to see every step.",
    "the password is in 1Password",
    "login: email / password",
    "the first token is 'The' and the second is ' cat'",
    "Chip and PIN arrived in the UK around 2006.",
    "123456 is the most common password in every leak.",
    "The front door opens with a key, not a code.",
    "You log in with Google or GitHub.",
    "Password: •••••••• (blurred on purpose)",
    "the password file is at: notes.txt",
    "2019 is the year I changed my password",
    "The PIN pad has 4 rows and 3 columns.",
    "error code 1045 access denied",
    "precision: fp16 / bf16, resolution: 1920 / 1080",
    "the password is the same as before",
    "the tokenizer splits words into tokens: sub-words / bytes",
    "DB_HOST=localhost; if (a!=b2) x+=Y1;", "C++17 and C#10 in Q&A3", "see #L42 and PR#1234",
    "host key fingerprint: SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s", "set it to 4096 and retry",
    "Polski kod błędu 404 znaczy brak strony", "the issue is #2214",
    "e.g. AKIA" + "IOSFODNN7EXAMPLE is the placeholder the AWS docs use", "password managers like KeePass are great",
])
def test_prose_window_leaves_descriptions(scrubber: Scrubber, text: str) -> None:
    assert scrubber.scrub(text, find_names=False).text == text


@pytest.mark.parametrize(("text", "secret"), [
    ("front door:\n0 8 2 7 5\nhold the last digit", "0 8 2 7 5"),
    ("kapı şifresi 2468* , ama bazen", "2468"),
    ("office door: badge reader broken so use keypad 3341*", "3341"),
    ("the key box next to the entrance opens with 2514. Enjoy!", "2514"),
    ("pin for the parcel locker: 481 937 — expires tomorrow 18:00", "481 937"),
    ("Haustürcode: 7316, danach die Klingel", "7316"),
    ("dorm door keypad 3·7·1·9 (as on the sheet)", "3·7·1·9"),
    ("backpack TSA lock set to 517", "517"),
])
def test_lock_codes_stated_near_what_they_open_are_replaced(scrubber: Scrubber, text: str, secret: str) -> None:
    out = scrubber.scrub(text).text
    assert secret not in out and "<PASSWORD>" in out, out


@pytest.mark.parametrize(("text", "secret"), [
    ("mailgun key-9404cd7a094a4c2b9b135d0044c3a2b3 (eu region)", "key-9404cd7a094a4c2b9b135d0044c3a2b3"),
    ("twilio SID AC7ac9bf18dec0fc201e43fd7be567202f", "AC7ac9bf18dec0fc201e43fd7be567202f"),
    ("posts to https://hooks.zapier.com/hooks/catch/15697076/g026qm/", "15697076/g026qm"),
    ("license: 6F96-9Z3S-XQOT-QES7 (the text editor)", "6F96-9Z3S-XQOT-QES7"),
    ("Hasło do konta Spotify: Kisiel_Truskawka_7, nie zmieniajcie!", "Kisiel_Truskawka_7"),
    ("pw for the wedding photo album (google photos shared link) is Elopement_0612", "Elopement_0612"),
])
def test_provider_keys_and_keywords_of_round_six(scrubber: Scrubber, text: str, secret: str) -> None:
    assert secret not in scrubber.scrub(text).text
