"""Other people's details: names found by context (greetings, sign-offs, titles, CV references, "with X and Y",
thanks, @mentions), metadata and paths scrubbed like text, and the audit reading every output file."""

from __future__ import annotations

import argparse
import json

import pytest
from test_audit import write_shards

from flaxgpt.cli import data as cli_data
from flaxgpt.data import audit
from flaxgpt.ingest.extract.base import Owner
from flaxgpt.ingest.privacy import Scrubber
from flaxgpt.ingest.privacy.metadata import metadata_people, scrub_metadata, scrub_path
from flaxgpt.ingest.privacy.namesets import load_name_sets

OWNER = Owner(names=("Maren Solberg", "Maren"), emails=("maren@solberg.example",), handles=("maren", "msolberg"))


@pytest.fixture(scope="module")
def scrubber() -> Scrubber:
    return Scrubber(OWNER, public=("https://solberg.example", "Grace Hopper"))


def test_name_sets_come_from_the_package_and_know_names_not_products():
    sets = load_name_sets()
    assert {"Priya", "Tomasz", "Lena", "Miriam"} <= sets.first and {"Okafor", "Kovacs"} <= sets.last
    assert not {"Jupyter", "Kubernetes", "Python"} & sets.first


@pytest.mark.parametrize("text, gone, kept", [
    ("Hi Priya,\nthe run finished. Priya will check the numbers.", ["Priya"], ["Hi", "finished"]),
    ("Dear Mr. Okafor,\nplease find the contract attached.", ["Okafor"], ["Dear Mr.", "contract"]),
    ("Hallo Femke,\nbis morgen.", ["Femke"], ["Hallo"]),
    ("Let me know.\n\nThanks,\nTomasz", ["Tomasz"], ["Thanks,"]),
    ("See attached.\n\nBest,\nLena Fischer\nAcme", ["Lena", "Fischer"], ["Best,", "Acme"]),
    ("References: Dr. Miriam Kovacs, Head of Data, Acme", ["Miriam", "Kovacs"], ["Head of Data, Acme"]),
    ("## References\n\n- Henrik Aas, Engineering Manager, Nordlys\n- Prof. Jan de Vries, TU Delft\n",
     ["Henrik", "Aas", "Jan", "Vries"], ["Engineering Manager", "TU Delft"]),
    ("I spent the day with Oskar and Beatriz on the warehouse.", ["Oskar", "Beatriz"], ["warehouse"]),
    ("Big thanks to Halvard Moe for the load tests.", ["Halvard", "Moe"], ["load tests"]),
    ("@beatriz.alves bring the violin part", ["beatriz.alves"], ["violin"]),
    ("Hi Will,\nsee you at six.", ["Will"], ["Hi", "six"]),
    ("The paper with Tomasz. Tomasz Wierzba and I wrote it.", ["Tomasz", "Wierzba"], ["paper"]),
    # Third round (rephrased from a development set written blind): more titles and role labels, lower-case
    # names after a greeting or a sign-off dash, names after "from", "that", ";" and a dash, particle surnames.
    ("Relatore: Prof.ssa Giulia Ferraro", ["Giulia", "Ferraro"], ["Relatore"]),
    ("Directeur de thèse : Pr. Luc Bernard", ["Luc", "Bernard"], ["Directeur"]),
    ("Mentors: Arjun Nair, Meera Shah", ["Arjun", "Nair"], ["Mentors"]),
    ("Advisor (summer fellowship): Ruth Okoye", ["Ruth", "Okoye"], ["Advisor", "fellowship"]),
    ("hi priya — the run finished", ["priya"], ["hi", "run"]),
    ("ok, merged\n-- tomasz", ["tomasz"], ["merged"]),
    ("late again, sorry\nSent from my phone\n- Kenji", ["Kenji"], ["Sent from my phone"]),
    ("Alles klar.\nDanke & LG\nFemke", ["Femke"], ["Danke"]),
    ("o Sr. Alves chega amanhã", ["Alves"], ["Sr."]),
    ("Sensei Morimoto watched the kata", ["Morimoto"], ["Sensei"]),
    ("Judge Castellano adjourned the hearing", ["Castellano"], ["hearing"]),
    ("the fix from Dariusz landed", ["Dariusz"], ["fix"]),
    ("we learned that Björn speaks Finnish", ["Björn"], ["Finnish"]),
    ("long day; Mateus fell asleep early", ["Mateus"], ["asleep"]),
    ("Jorinde van den Berg presented the poster", ["Jorinde", "Berg"], ["poster"]),
    # Fourth round: lists of people joined by "&", "+", "/" or "and" with "me" or "I", display-name mentions.
    ("Ingrid, Pavel and I split the migration", ["Ingrid", "Pavel"], ["migration"]),
    ("Marek/Zofia/Bartek are on call this week", ["Marek", "Zofia", "Bartek"], ["on call"]),
    ("Kenta & Ayaka & me at the onsen", ["Kenta", "Ayaka"], ["onsen"]),
    ("@Priyanka Rao can you take a look?", ["Priyanka", "Rao"], ["take a look"]),
    # Fifth round: sign-offs after a slash or a phone's footer, after a blank line, in a signature block.
    ("Tack för hjälpen!\n/Linnea", ["Linnea"], ["Tack"]),
    ("Late, save me a seat\n\nSent from my iPhone\n\nRajesh", ["Rajesh"], ["Sent from my iPhone"]),
    ("Te llamo luego.\nUn saludo,\nIñaki\nEnviado desde mi móvil", ["Iñaki"], ["Un saludo"]),
    ("Met vriendelijke groet,\n\nDaan Vermeulen\nTeamleider", ["Daan", "Vermeulen"], ["Teamleider"]),
    ("Cheers,\n--\nAngus McTavish | Surveyor", ["Angus", "McTavish"], ["Surveyor"]),
    # round 6: names listed with the writer or a found name, more titles and greetings, nicknames, mail headers
    ("me and andrzej went bouldering", ["andrzej"], ["me and", "bouldering"]),
    ("me & mads on call this week", ["mads"], ["on call"]),
    ("Saskia & I finally shipped the onboarding", ["Saskia"], ["finally shipped"]),
    ("Selin ve Onur ile kahve içtik", ["Selin", "Onur"], ["kahve"]),
    ("Road trip with Babs and Kwesi next month", ["Babs", "Kwesi"], ["Road trip"]),
    ("Doktor Nyström ringer tillbaka i eftermiddag", ["Nyström"], ["ringer"]),
    ("Madame Nkemelu teaches the French class now", ["Nkemelu"], ["French class"]),
    ("heyy kuba!! u still coming climbing tonight?", ["kuba"], ["heyy"]),
    ("yo sipho, ready for the deploy?", ["sipho"], ["deploy"]),
    ("Yours sincerely,\nChukwuemeka Nwosu (Emeka)", ["Emeka"], ["Yours sincerely"]),
    ("Reports to: Sven Eriksson (Head of Platform)", ["Eriksson"], ["Head of Platform"]),
    ("+@vikram.s for review", ["vikram"], ["for review"]),
    ("> quoted from u/throwaway_brennan: 'just use postgres'", ["throwaway_brennan"], ["just use postgres"]),
    ("To: Keanu Pahinui; Cc: Maren Solberg\nSubject: venue deposit", ["Pahinui"], ["Maren Solberg"]),
])
def test_names_in_context_are_replaced(scrubber, text, gone, kept):
    out = scrubber.scrub(text).text
    assert "<NAME>" in out
    for word in gone:
        assert word not in out, out
    for word in kept:
        assert word in out, out


# Patterns a rule author does not enumerate: bare names mid-sentence, relations, list forms, tail sign-offs,
# referee lists with several people, soft titles in other languages.
@pytest.mark.parametrize("text, gone, kept", [
    ("Apparently Ottilie is moving to Leeds.", ["Ottilie"], ["Apparently", "moving"]),
    ("Maximilian said the boiler broke again.", ["Maximilian"], ["boiler"]),
    ("Yesterday my cousin Tamsin's band played.", ["Tamsin"], ["cousin", "band"]),
    ("The plumber, Rajesh Kapoor, never came back.", ["Rajesh", "Kapoor"], ["plumber"]),
    ("Gisteren belde Annelies over het dak.", ["Annelies"], ["Gisteren", "dak"]),
    ("standup w/ Zofia + Luca today", ["Zofia", "Luca"], ["standup", "today"]),
    ("Written with J. Okonkwo and R. Tanaka.", ["Okonkwo", "Tanaka"], ["Written"]),
    ("Easter with Uncle Desmond and Aunt Philippa.", ["Desmond", "Philippa"], ["Easter", "Uncle"]),
    ("Loved every minute of it,\nFrederik", ["Frederik"], ["Loved"]),
    ("running late, sorry — Ingrid", ["Ingrid"], ["sorry"]),
    ("Referees: Prof. Alan Byrne (advisor); Siobhan Walsh (team lead)", ["Byrne", "Siobhan", "Walsh"], ["advisor"]),
    ("Referee 1: Dominik Nowak, Head of Platform", ["Dominik", "Nowak"], ["Head of Platform"]),
    ("Meneer Bakker komt morgen langs.", ["Bakker"], ["Meneer", "morgen"]),
    ("Coach Renata moved practice to six.", ["Renata"], ["Coach", "practice"]),
    # Second round (rephrased patterns): role labels on a CV, chains of titles, particles in a row, surname shapes,
    # relations in other languages, non-ASCII @mentions.
    ("PhD supervisor: Prof. Ingrid Halvorsen", ["Ingrid", "Halvorsen"], ["supervisor"]),
    ("Reported to Tobias Lindqvist (VP Engineering) from 2020", ["Tobias", "Lindqvist"], ["VP Engineering"]),
    ("Worked under Maeve Gallagher on search ranking", ["Maeve", "Gallagher"], ["search ranking"]),
    ("Betreuer: Herr Dr.-Ing. Stefan Albers", ["Stefan", "Albers"], ["Betreuer"]),
    ("Promotor: prof. dr. ir. Joost Verbeek", ["Joost", "Verbeek"], ["Promotor"]),
    ("Met vriendelijke groet,\nMarleen van den Broek", ["Marleen", "Broek"], ["groet"]),
    ("Honestly Declan MacNamara nailed the demo", ["Declan", "MacNamara"], ["demo"]),
    ("Meine Schwägerin Henrike kommt später.", ["Henrike"], ["Schwägerin"]),
    ("@Zoë kannst du das prüfen?", ["Zoë"], ["prüfen"]),
    # Round 7: after a colon when a verb follows; lower case after a verb done to a person.
    ("meeting notes: Obinna will draft the RFC", ["Obinna"], ["meeting notes", "draft"]),
    ("i think marek fixed the cron job", ["marek"], ["i think", "fixed"]),
    ("saw hamid at the station, he says hi", ["hamid"], ["saw", "station"]),
    # ... sign-offs, references and titles in more languages.
    ("Med vänliga hälsningar\nKarin Lindqvist", ["Karin", "Lindqvist"], ["hälsningar"]),
    ("Üdvözlettel:\nKovács Zsófia", ["Kovács", "Zsófia"], ["Üdvözlettel"]),
    ("Grüße aus dem Homeoffice\nUte", ["Ute"], ["Homeoffice"]),
    ("Referencje: dr hab. Tomasz Zieliński, Politechnika Wrocławska", ["Tomasz", "Zieliński"], ["Politechnika"]),
    ("Referenze: prof.ssa Francesca Esposito, Politecnico di Milano", ["Francesca", "Esposito"], ["Politecnico"]),
    ("References — Yasmin El-Khoury, Senior Editor", ["Yasmin", "El-Khoury"], ["Senior Editor"]),
    ("Fru Bergström har redan betalat hyran", ["Bergström"], ["Fru", "hyran"]),
    ("pani doktor Wójcik mówi, że to tylko przeziębienie", ["Wójcik"], ["pani doktor"]),
    ("M. Garnier m'a rendu le devis signé", ["Garnier"], ["devis"]),
    ("Co-authored with M. Lindqvist and T. Nakamura.", ["Lindqvist", "Nakamura"], ["Co-authored"]),
    # ... chat logs pasted as text, pronouns, titles after the name, inflected names in lists, capitals outside
    # Latin-1, lower-case names before an emoji, a dash sign-off after a comma.
    ("[21/11/2025, 19:42:11] Margarida Santos: chego às 8", ["Margarida", "Santos"], ["chego"]),
    ("12/03/24, 08:15 - Bogdan Ionescu: am ajuns la birou", ["Bogdan", "Ionescu"], ["birou"]),
    ("[14:02] <pieter_vd> deploy's done\n[14:03] <maren> nice", ["pieter_vd"], ["<maren>", "deploy"]),
    ("Seun Adebayo (he/him) is typing…", ["Seun", "Adebayo"], ["(he/him)"]),
    ("Kemal Hoca dersi iptal etti", ["Kemal"], ["dersi"]),
    ("Sato-sensei's slides are on the drive", ["Sato"], ["-sensei's"]),
    ("byli jsme s Tomášem a Kateřinou na horách", ["Tomášem", "Kateřinou"], ["horách"]),
    ("mentiin Eetun ja Sannan kanssa mökille", ["Eetun", "Sannan"], ["kanssa"]),
    ("Astrid og jeg skal bage i weekenden", ["Astrid"], ["og jeg"]),
    ("Cześć Łukasz, masz chwilę?", ["Łukasz"], ["Cześć"]), ("heyy kuba 👋 you around tonight?", ["kuba"], ["heyy"]),
    ("sorry can't make it tonight, next time! - Ilse", ["Ilse"], ["next time"]),
    # ... first names that are words, capitalised mid-sentence with a person's context.
    ("I think Will is bringing the projector tomorrow", ["Will"], ["I think", "projector"]),
    ("had dinner at Grace's place, her lasagne is unreal", ["Grace"], ["'s place"]),
    ("I owe Frank twenty quid from the pub quiz", ["Frank"], ["twenty quid"]),
    ("<@U04ABCD12|pedro> approved it", ["pedro"], ["<@U04ABCD12|", "approved"]),
    ("+Priya Raman can you review the intro?", ["Priya", "Raman"], ["can you review"]),
    ("Best regards,\nKarin Lindqvist\nAcme GmbH", ["Karin", "Lindqvist"], ["Acme GmbH"]),
    ("Kind regards,\nSeo-yeon Park\nPhD candidate", ["Seo-yeon", "Park"], ["PhD candidate"]),
    ("hi all, and hi Priscilla specifically 👋", ["Priscilla"], ["hi all"]),
    # dev8's misses: the writer first in other languages, Irish particles, "Many thanks and kind regards",
    # hyphenated Korean given names, meeting events, timed chat lines, owners of a person's things, a lone
    # first name after a blank line.
    ("Ik en Jelle gaan vanavond naar de film.", ["Jelle"], ["Ik en"]),
    ("Eu e o Caio vamos de carro", ["Caio"], ["Eu e o"]),
    ("Best,\nTomás Ó Briain", ["Tomás", "Briain"], ["Best"]),
    ("Many thanks and kind regards,\nCatriona MacLeod | Events", ["Catriona", "MacLeod"], ["| Events"]),
    ("The new intern, Ji-ho Park, is sharp", ["Ji-ho", "Park"], ["The new intern"]),
    ("Gwen Price-Llewellyn (External) joined the meeting", ["Gwen", "Price-Llewellyn"], ["joined the meeting"]),
    ("[09:14] Shauna Devlin: running 10 mins late", ["Shauna", "Devlin"], ["running"]),
    ("It's Harriet's birthday on the 14th", ["Harriet"], ["'s birthday"]),
    ("Thanks again for covering Friday.\n\nMarguerite", ["Marguerite"], ["covering Friday"]),
    ("The Harcourts and the Delgados are both coming", ["Harcourts", "Delgados"], ["both coming"]),
    ("thanks —@lena, and @Jean-Luc Picard approved", ["lena", "Jean-Luc", "Picard"], ["approved"]),
    ("Priya's law school friend called", ["Priya"], ["law school"]),
])
def test_names_without_an_enumerated_context_are_replaced(scrubber, text, gone, kept):
    out = scrubber.scrub(text).text
    for word in gone:
        assert word not in out, out
    for word in kept:
        assert word in out, out


@pytest.mark.parametrize("text", [
    "Mr. Bean was on again last night.", "Dr. Who is back for another series.", "Built with Vim and Emacs.",
    "We flew to Jamaica in April.", "The Victoria line was closed.", "In Florence the museums are full.",
    "Hill Climbing is a local search method.", "See the PyCon Berlin schedule.",
    "Booked a room at St. Anne's Clinic, Block C.", "@renovate rebase", "cc @infra-oncall for the outage",
    "Ciao a tutti, a domani!", "Senior Product Manager at Google Cloud", "reported to the Board in March",
    "Prof. Layton puzzles are fun on a train.", "My Dr. Martens boots finally broke in.",
    "Passwort vergessen? Klicken Sie hier.", "Flights from Charlotte were delayed.", "hi all — standup moved",
    "Noor Aksoy, Senior Data Engineer, Rotterdam",
    "cc @frontend-guild for visibility",
    # Round 7: famous pairs, storms, organisations' handles, domains, a colon before a list of things, a city
    # after "desde", a lower-case word that is also a name.
    "we had Ben & Jerry's on the sofa", "Backend Engineer at Johnson & Johnson", "saw Romeo and Juliet twice",
    "Hurricane Milton made landfall", "follow @NASA for the stream", "the one ending in @uni.example, no",
    "grocery run: Jasmine and Basmati rice", "Saludos desde Valencia", "i think rose did it", "told bill about it",
    "pan fried Asian noodles", "Don Quixote is long", "<b> bold </b>\n<i> italic </i>", "flights to Milan and Rome",
    "Beyond the Bey of Tunis", "we meet in May is fine", "the Rose Bowl was packed", "Hope Street Opening Hours",
    "go with Grace period rules", "A weekend with Summer and Autumn colours.", "<@U0123ABCD> joined the channel",
    "rated +Good by most users",
    # dev8's false positives: organisations signing, greetings to places and titles of works, articles after a
    # title, places after a name, saints' places, everyone-mentions in other languages, planets, degrees.
    "Atentamente,\nBanco Santander", "Mit freundlichen Grüßen\nIhre Stadtwerke München", "Bom dia, Lisboa! Que calor",
    "Watched Good Morning, Vietnam again", "Got tickets for Dear Evan Hansen!", "Herr der Ringe läuft heute",
    "the ATM on Queen Street ate my card", "la Basilica di San Marco", "@alle bitte bis Freitag einreichen",
    "Mercury, Venus and Mars line up tonight", "Technische Universität München, Master Informatik.",
    "The Board joined the meeting", "[14:20] Slackbot: Reminder: timesheets", "Apple's office is huge",
    "See the results below.\n\nConclusion", "We bought a Wi-Fi router and a Co-op card",
    "In the book, Sherlock Holmes works it out", "Bought a new kettle from John Lewis today",
    "The Mr. Men books are the best bedtime stories", "we watched the Simpsons and the news",
    "the Beatles are great", "to Cabo de São Vicente — 28 km", "I still count ships on the Maas. The",
    "also in Portuguese, Italian, Polish, Turkish, Swedish, Norwegian, Danish, Finnish and Czech",
    "Euler's identity is neat", "Moore's law is dead", "I love Calvin Klein and Ralph Lauren",
])
def test_bare_name_rule_keeps_things_and_places(scrubber, text):
    assert "<NAME>" not in scrubber.scrub(text).text


@pytest.mark.parametrize("text", [
    "Hi team,\nquick update on the release.", "Dear Sir or Madam,\nI am writing about my order.",
    "Hello world! My first post.", "Dear Hiring Manager,", "Thanks, Monday works for me.",
    "We deployed it with Docker and Kubernetes.", "Offices with Paris and London teams.",
    "Thanks to Jupyter the notebook runs anywhere.", "Will you come on Friday?", "We use Jupyter with Grace and Mark.",
    "Hi Maren, the slides look great.", "Best,\nMaren Solberg", "Dear Ms Solberg,", "ping @maren when ready",
    "@dataclass\nclass Config:\n    lr: float", "npm install @types/node", "Sr. Data Scientist at Acme",
    "I met Grace Hopper's biographer with Priya and Grace Hopper.",
])
def test_common_words_owner_and_public_names_are_kept(scrubber, text):
    out = scrubber.scrub(text).text
    for kept in ("Maren", "Solberg", "Grace Hopper", "Docker", "Jupyter", "Paris", "Monday", "Sir", "team", "@types"):
        assert out.count(kept) == text.count(kept), out
    if "Priya" not in text:
        assert "<NAME>" not in out, out


def test_code_identifiers_are_not_names(scrubber):
    code = "def greet(Priya):\n    # Hi Priya, with Oskar and Beatriz\n    return Priya\n"
    assert scrubber.scrub(code, find_names=False).text == code
    assert "Priya" not in scrubber.scrub(code).text  # the same text as prose loses the name


def test_titles_in_a_known_persons_name_stay(scrubber):
    out = scrubber.scrub("Dear Mr. Okafor, thank you.", people=("Mr. Chidi Okafor",)).text
    assert out == "Dear Mr. <NAME>, thank you."


def test_metadata_and_paths_are_scrubbed_like_text(scrubber):
    meta = {"to": ["Priya Raman <priya.raman@quill.example>", "Maren Solberg <maren@solberg.example>"],
            "subject": "Lunch with Priya and Oskar", "author": "Chidi Okafor", "pages": 2,
            "nested": {"cc": ["+31 20 555 0199"]}, "people": ["Priya Raman"]}
    people = metadata_people(meta, scrubber)
    assert people == ("Priya Raman", "Chidi Okafor")
    out, counts = scrub_metadata(meta, scrubber, people)
    text = json.dumps(out)
    for leak in ("Priya", "Raman", "priya.raman", "Oskar", "Chidi", "Okafor", "555 0199"):
        assert leak not in text, text
    assert out["to"][1] == "Maren Solberg <maren@solberg.example>" and out["pages"] == 2
    assert out["author"] == "<NAME>" and counts["EMAIL"] == 1 and counts["PHONE"] == 1
    a, b = scrub_path("ines.mbox#a1@mail.example", scrubber), scrub_path("ines.mbox#b2@mail.example", scrubber)
    assert a.startswith("ines.mbox#<EMAIL>~") and a != b and "mail.example" not in a
    assert scrub_path("notes/week-10.txt", scrubber) == "notes/week-10.txt"


def test_audit_reads_every_file_and_names_file_and_field(tmp_path, capsys):
    out = tmp_path / "ingest"
    write_shards(out / "shards" / "notes", ["Nothing to see here.", "Still nothing."])
    (out / "documents.jsonl").write_text(json.dumps({"id": "mail/a", "text": "ok", "metadata": {
        "to": ["Priya <priya.raman@quill.example>"]}}) + "\n")
    dropped = {"source": "mail", "path": "x", "reason": "call +31 20 555 0199"}
    (out / "dropped.jsonl").write_text(json.dumps(dropped) + "\n")
    (out / "report.json").write_text(json.dumps({"mail": {"privacy": {"hunter2 secret": 1}}}))
    (out / "report.md").write_text("# Ingest report\n\nHUNTER2\nsecret survived here\n")
    canaries = tmp_path / "canaries.txt"
    canaries.write_text("priya.raman@quill.example\n+31 20 555 0199\nhunter2-Secret\n")

    report = audit.audit([out], audit.read_canaries(canaries), progress=False)
    got = {(f.canary, f.where.rsplit("/", 1)[-1], f.field, f.match) for f in report.findings}
    assert got == {("priya.raman@quill.example", "documents.jsonl", "metadata.to[0]", "exact"),
                   ("+31 20 555 0199", "dropped.jsonl", "reason", "exact")}
    read = {p.rsplit("/", 1)[-1] for p in report.files}
    assert {"report.md", "report.json", "dropped.jsonl", "documents.jsonl", "train-00000.json"} <= read

    fuzzy = audit.audit([out / "shards" / "notes"], ["hunter2-Secret"], progress=False, fuzzy=True)
    assert {(f.where.rsplit("/", 1)[-1], f.field, f.match) for f in fuzzy.findings} == {
        ("report.json", "mail.privacy.hunter2 secret (key)", "fuzzy"), ("report.md", None, "fuzzy")}

    parser = argparse.ArgumentParser()
    cli_data.add_arguments_audit(parser)
    assert cli_data.run_audit(parser.parse_args([str(out), "--canaries", str(canaries), "--fuzzy"])) == 1
    printed = capsys.readouterr().out
    assert f"in {out / 'documents.jsonl'} line 1 (id mail/a) [exact] field metadata.to[0]" in printed
    assert f"in {out / 'report.md'} [fuzzy]" in printed


@pytest.mark.parametrize("text", [
    "call me, maybe tomorrow",
    "Bonjour Claire, merci pour ton message !",
    "me and the team shipped it",
    "salt and I do not get along",
    "see https://reddit.com/u/someone and /usr/u/lib",
])
def test_lists_with_the_writer_keep_words_that_are_no_names(scrubber, text):
    out = scrubber.scrub(text).text
    assert out.count("<NAME>") <= text.count("Claire"), out
