"""Names of other people found by context: greetings, sign-offs, titles, CV references, "with X and Y",
"thanks to X" and @mentions, in English and several other languages.

A capitalised word is taken as a name only where the context says a person is meant, and then
only if the name sets (``namesets``) know it as a name, or the context is strong (a title, a
greeting closed by a comma). Each name found is also replaced wherever else it occurs in the
same document (``names._name_spans``), so "Hi Priya, ... Priya said" loses both. Owner names
and handles are never taken; allow-listed ``public`` strings are kept by the scrubber.

Common words that are also names ("Will", "May", "Grace", "Mark") count after a greeting, a
title or in a sign-off; in the weak contexts ("with X", "thanks to X") only next to a surname or
another, unambiguous name. Weekdays, months, places, products and team words ("Hi team", "Dear
Sir or Madam", "with Python and Rust", "thanks to Jupyter") are never names. Spans inside fenced
code blocks are left alone, and ``Scrubber`` does not run this finder on code documents.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Iterator

from flaxgpt.ingest.extract.base import Owner
from flaxgpt.ingest.privacy.case_view import after_candidates, case_view
from flaxgpt.ingest.privacy.names import _COMMON_WORDS, TITLE_WORDS, _name_spans, _people_index
from flaxgpt.ingest.privacy.namesets import NameSets
from flaxgpt.ingest.privacy.text import _Span, _View

_STOP_WORDS = """
All Everyone Everybody Everybody's Team Teams Folks Guys Gang People Friends Friend Colleagues Colleague Committee
Members Member Board Class Sir Sirs Madam Madame Mam Ma'am Mesdames Messieurs There World Both You Y'all Again
Again Readers Reader Reviewers Reviewer Hiring Manager Managers Recruiter Recruiters Customer Customers Support
Sales Admin Admins Partners Partner Students Parents Neighbours Neighbors Sender Recipient Applicant Candidate
Organizers Organisers Editor Editors Chair Chairs Panel Jury Staff Company Companies Inc Ltd Labs Lab Group
University Institute College School Department Office Centre Center Foundation Hospital Council Ministry
Monday Tuesday Wednesday Thursday Friday Saturday Sunday Mon Tue Wed Thu Fri Sat Sun Today Tomorrow Yesterday
Tonight Weekend January February March April May June July August September October November December Feb
Mar Apr Jun Jul Aug Sep Sept Oct Nov Dec Spring Summer Autumn Fall Winter Christmas Easter Xmas Ramadan
Maandag Dinsdag Woensdag Donderdag Vrijdag Zaterdag Zondag Montag Dienstag Mittwoch Donnerstag Freitag Samstag
Sonntag Lundi Mardi Mercredi Jeudi Vendredi Samedi Dimanche Lunes Martes Miércoles Jueves Viernes Sábado Domingo
The A An This That These Those It Its I We Our Us My Me He She His Her They Them Their And Or But So If As At
By For From In Into Of On To Up With Is Be Do Go No Not Yes Ok Okay Hi Hello Hey Dear Thanks Thank Best Regards
Cheers Ciao Hola Hallo Hoi Hej Moin Servus Salut Bonjour Olá Kind Warm Love Yours Sincerely Good Great Happy
Welcome Please Sorry Congrats Congratulations Well Also
Just Here Now Then Again Soon Later Everything Nothing Something Anyone Someone Nobody Each Every Any Some Other
Mom Mum Dad Mama Papa Mother Father Sister Brother Grandma Grandpa Granny Auntie Uncle Aunt Baby Honey Darling
Sweetie Boss Chief Coach Doc Mate Buddy Bro Dude Captain Officer Agent Professor Doctor Mister Lady Gentlemen
Ladies Santa God Lord Jesus Allah Diary Valued Esteemed Respected Future Self
Sie Ihnen Ihr Du Dich Dir Er Wir Euch Ich Uns Jij Wij Zij Hij Vous Tu Nous Ils Usted Ustedes Você Vocês
Senior Junior Lead Principal Associate Assistant Intern Director Engineer Developer Scientist Designer Analyst
Consultant Architect Researcher Lecturer
Python Rust Go Golang Java JavaScript TypeScript Kotlin Swift Scala Ruby Julia Perl Haskell Elixir Erlang Dart
Lua Fortran Cobol Pascal Ada Crystal Nim Zig Clojure Jupyter Docker Kubernetes Linux Windows Mac Ubuntu Debian
Android Apple Google Microsoft Amazon Meta Facebook Twitter Slack Discord GitHub GitLab Jira Notion Zoom Teams
Excel Word Outlook PowerPoint Chrome Firefox Safari React Vue Angular Django Flask Rails Spring Node Deno
Okta Auth0 Keycloak Bitwarden KeePass LastPass Dashlane
Postgres MySQL Redis Kafka Spark Hadoop Airflow Pandas NumPy JAX Flax PyTorch TensorFlow Keras Triton CUDA AWS
Azure GCP Terraform Ansible Jenkins Travis Copilot Claude Gemini Siri Alexa Cortana Bard Llama Mistral
Amsterdam Rotterdam Utrecht Hague Delft Eindhoven Groningen Leiden Berlin Munich Hamburg Cologne Frankfurt
Vienna Zurich Geneva Paris Lyon Marseille London Manchester Edinburgh Dublin Brussels Antwerp Oslo Bergen
Stockholm Copenhagen Helsinki Madrid Barcelona Lisbon Porto Rome Milan Turin Naples Venice Prague
Warsaw Krakow Budapest Athens Istanbul Moscow Kyiv Tokyo Kyoto Osaka Seoul Beijing Shanghai Singapore Sydney
Melbourne Auckland Toronto Montreal Vancouver Boston Chicago Seattle Denver Houston Atlanta
Miami Portland York Jersey Angeles Washington California Texas Florida
Europe Asia Africa America Americas Australia Canada Mexico Brazil Argentina Chile Peru China Japan Korea
Germany France Spain Portugal Italy Netherlands Holland Belgium Norway Sweden Denmark Finland Poland Austria
Switzerland Ireland Scotland England Wales Britain Greece Turkey Israel Egypt Kenya Nigeria Ghana Morocco
"""
# Capitalised prose words that the name sets also hold (seen in package READMEs): never a bare name.
_PROSE_WORDS = """See Grave Land Libya Yemen Bolivia Jamaica Uruguay Chinese Hong None States Cloud Russian Len Data
India German Bishop Ninja Dev Hill Bell File Nano Roman Kong Kit Stanford Luxembourg Git Moi Mean
Lean Theano Real Ring Tamil Sri Duke Leaf Bean Portal Image House Wild Zen Sony Fish Rich Key Anti
Caffe Forest Win Vim Emacs Atom Sublime Rider Ihr Your Votre Uw Je Su Lea Ja Nee Si Oui Non Da Net
Eu Ok Victoria Santiago Florence Sydney Paris Jordan Georgia Chelsea Lincoln Austin Dallas Phoenix
Orlando Madison Aurora Nova Apache Linux Python Unix Mint Arch Gentoo Tor Swift Echo Alpha Beta
Gamma Delta Sigma Omega Atlas Apollo Orion Luna Max Min Sum Mode Mac Ray Dash Flask Pepper Robot Who
Strange Seuss Evil Oz Floor Chip Fifth Adam Jan Vila Bispo Martens Layton Oetker Bronner Scholl Dre Bean Octopus
Jekyll Hyde Siri Cortana Venus Mercury Mercedes Tesla Porsche Ferrari Brighton Kafka Django Rust Hadoop
Ansible Gatsby Sphinx Heroku Alexa Kibana Grafana Elixir Pandas Keras Valencia Mars Jupiter Saturn Neptune Pluto
Uranus Earth Master Bachelor Diplom MSc BSc PhD MBA English French German Spanish Portuguese Italian Polish Turkish
Swedish Norwegian Danish Finnish Czech Slovak Hungarian Romanian Bulgarian Greek Dutch Flemish Indonesian Malay Thai
Vietnamese Korean Japanese Mandarin Cantonese Hindi Urdu Bengali Punjabi Telugu Marathi Arabic Hebrew Persian Farsi
Swahili Yoruba Igbo Hausa Zulu Xhosa Afrikaans Irish Scottish Welsh Icelandic Estonian Latvian Lithuanian Ukrainian
Serbian Croatian Bosnian Slovenian Albanian Macedonian Catalan Basque Galician Filipino Tagalog Mongolian Nepali
Sinhala Burmese Khmer American British Canadian Australian Mexican Brazilian Argentinian Chilean Colombian Peruvian
Nigerian Kenyan Ghanaian Egyptian Moroccan Indian Pakistani Israeli Iranian European African Asian Latin"""
_STOP = frozenset(_STOP_WORDS.split())
_PROSE = frozenset(_PROSE_WORDS.split())
# Words after which a capitalised word is a place or thing, not a person ("the Bishop", "in Florence").
_NOT_BEFORE_WORDS = """the a an this that these those in at of from into onto via near le la les el los las
het een der die das den dem des du au aux en im am zum zur nach naar bij desde aus uit vanuit från fra depuis
dalla dal dallo fino hacia vers"""
_NOT_BEFORE = frozenset(_NOT_BEFORE_WORDS.split())
# Cities and regions named like people: after "from" they are places ("from Charlotte", "from Savannah").
_PLACES = frozenset("""Charlotte Savannah Eugene Tyler Jackson Marion Augusta Helena Regina Adelaide Alexandria
Brooklyn Devon Kent Dakota Carolina Virginia Georgia Florida Hamilton Wellington Victoria Florence Austin Madison
Orlando Lincoln Chelsea Sydney Paris Jordan Santiago Sofia Lyon Nancy Luzern Lucerne Valencia Murcia Cordoba
Mercedes Beatrice Dallas Houston Phoenix Denver Aurora Raleigh Camden Chester Preston Clifton""".split())  # noqa: SIM905
# Countries, cities and "the world" that are no one's first name in use: never a name, whatever the context.
_GEO = frozenset("""Italia Lisboa Roma Milano Napoli Torino Firenze Venezia Madrid Sevilla Barcelona Bilbao Porto
Brasil España Espana Deutschland Berlin München Hamburg Köln Wien Zürich Genève Nederland Amsterdam Rotterdam
Utrecht London
Dublin Paris Bruxelles Praha Warszawa Kraków Budapest Bucuresti Istanbul Ankara Stockholm Oslo København
Helsinki Mundo World Welt Monde Mondo Wereld Świecie Vietnam America Africa Europa Europe Asia""".split())  # noqa: SIM905
_PLACES |= _GEO
# Family and household titles: a name follows only if the name sets know it ("Aunt Philippa", "Coach Renata").
_SOFT_TITLES = """Aunt Auntie Uncle Grandma Grandpa Granny Nana Oma Opa Tante Onkel Tía Tío Tia Tio Coach Pastor
Officer Nurse Sister Brother Cousin Sr Pan Don Fru Frk Herra Rouva Neiti Tohtori pan pani fru meneer mevrouw
doktor tohtori"""
_SOFT = frozenset(_SOFT_TITLES.split())
_MORE_TITLES = ("Mevrouw Meneer Dra Dr Sgt Sergeant Rev Revd Capt Cpt Insp Det Lt Cmdr Rabbi Imam Sensei Judge Doktor "
                "Madame Mademoiselle Dean Signora Signore Dona Doña Dña Sr Sra Hr Pani Panie Pana")
# Relations before a name ("my sister Yasmin", "our landlord, Vikram Malhotra").
_RELATIONS = """sister brother mum mom dad mother father son daughter wife husband partner boyfriend girlfriend fiancé
fiancée cousin niece nephew aunt uncle grandma grandpa granny grandmother grandfather friend mate colleague coworker
co-worker boss manager landlord landlady neighbour neighbor flatmate roommate housemate teacher dentist therapist
tutor supervisor intern cto ceo cfo coo vp builder plumber electrician doctor gp nurse lawyer accountant
nanny babysitter cleaner mechanic hairdresser barber trainer physio zus broer vriend vriendin collega buurman
buurvrouw schwester bruder freund freundin kollege kollegin
nachbar nachbarin sœur frère ami amie collègue voisin voisine hermana hermano amigo amiga vecino vecina
schwiegermutter schwiegervater schwägerin schwager tochter sohn mutter vater oma opa tante onkel cousine chef chefin
moeder vader dochter zoon schoonmoeder schoonvader nicht neef mère père fille fils cousine tante oncle madre padre
hija hijo prima primo tía tío"""
# Words after a name at a sentence start that make it a person ("Rosa said", "Anders calls").
_VERB_WORDS = """said says is was has had called calls rang texted thinks thought told asked asks wants wanted
will would can could just also and hat ist sagt sagte war heeft is zei belde dit a est était dijo ha from
fell went came made got sent wrote left took gave brought found spoke speaks knows likes loves lives works gets
makes goes does says broke ran met saw won lost"""
_VERBS = frozenset(_VERB_WORDS.split())
# Verbs done to a person, before a lower-case name ("saw hamid", "ask lena"); after an opinion verb the name must
# do something ("i think marek fixed it").
# Titles after a name: Turkish, Hungarian, Japanese ('\xff' stands for letters outside Latin-1: "Hanım").
_POST_TITLE_STEMS = (b" bey", b" han\xffm", b" hoca", b" \xfar", b" asszony", b"-san", b"-sensei", b"-sama", b"-kun",
                     b"-chan", b" efendi", b" abla", b" abi")
# A chat log's speaker at a line start: WhatsApp on iOS and Android, IRC with or without a time, Telegram's copy.
_CHAT_LINE = re.compile(
    r"^(?:\[\d{1,4}[/.-]\d{1,2}[/.-]\d{2,4},?[ \t]\d{1,2}:\d{2}(?::\d{2})?(?:[ \t]?[APap][Mm])?\][ \t]*"
    r"(?P<wa>[^:\n\d][^:\n]{1,39}?):[ \t]"
    r"|\d{1,4}[/.-]\d{1,2}[/.-]\d{2,4},?[ \t]\d{1,2}:\d{2}(?::\d{2})?(?:[ \t]?[APap][Mm])?[ \t]+[-–][ \t]+"
    r"(?P<android>[^:\n\d][^:\n]{1,39}?):[ \t]"
    r"|\[\d{1,2}:\d{2}(?::\d{2})?\][ \t]*<(?P<irc>[^<>\s/][^<>\n]{0,38})>[ \t]"
    r"|\[\d{1,2}:\d{2}(?::\d{2})?\][ \t]+(?P<timed>[A-Z][^:\n\d]{1,39}?):[ \t]"
    r"|(?P<event>[A-Z][^\W\d_]+(?:[ -][A-Z][^\W\d_'’-]+){1,2})"
    r"(?:[ \t]+\((?:External|Guest|Host|Gast|Extern|Externe)\))?"
    r"[ \t]+(?:joined|left|has joined|has left|is presenting|started presenting|was admitted|entered) "
    r"(?:the |this )?(?:meeting|call|channel|chat|conversation|lobby|room|group)"
    r"|<(?P<irc_bare>[\w.|^-]{2,30}|[A-Z][\w'-]+(?: [A-Z][\w'-]+){1,2})>[ \t]+(?=\S)"
    r"|(?P<tg>[A-Z][^,\n\[\]]{1,39}),[ \t]\[\d{1,2}[./]\d{1,2}[./]\d{2,4}[ \t]\d{1,2}:\d{2}\][ \t]*$)", re.M)
_EVENT_WORDS = (b" joined ", b" left ", b" has joined", b" has left", b" was admitted", b" is presenting",
                b" started presenting", b" entered ")
_HTML_TAGS = frozenset("""a b i u p s q br hr em tt li ul ol dl dt dd tr td th div span code pre kbd sub sup small big
strong table thead tbody tfoot html head body title script style link meta img form input label button select option
textarea iframe nav header footer section article aside main template slot svg path g sup center font blockquote
cite abbr mark del ins figure figcaption caption col colgroup video audio source canvas noscript details summary
dialog menu object param embed picture time wbr""".split())  # noqa: SIM905
_PRONOUNS = re.compile(r"([A-Z][^\W\d_]+(?:[ -][A-Z][^\W\d_'’-]+){0,2})[ \t]+"
                       r"\((?:he|she|they|ze|xe|hen|sie|er|il|elle)/(?:him|her|hers|them|theirs|zir|xem|hen|ihr|ihm|lui|elle)\)")
# Case endings and the nominative ending they replace: Polish and Czech instrumental, Hungarian "with", Finnish
# genitive ("Eetun ja Sannan kanssa").
_CASE_ENDINGS = (("ą", "a"), ("ou", "a"), ("iem", ""), ("em", ""), ("ovi", ""), ("val", ""), ("vel", ""),
                 ("nak", ""), ("nek", ""), ("ę", "a"))
_GENITIVE_ENDINGS = (("n", ""), ("y", "a"), ("i", "a"))
_LONG_VOWELS = {"á": "a", "é": "e"}
# First names that are also words: names when capitalised mid-sentence in a person's context (``_word_name``).
_WORD_NAMES = frozenset("""Will Hope Faith Grace Joy Dawn Rose Lily Ivy Iris Violet Bill Sue Pat Art Miles Frank Grant
Mark Guy Chase Hunter Drew Gene Wade Dean Earl Summer Eve Jack Ruby Amber Jade Holly Heather Daisy Olive Pearl Penny
Robin Ray Sandy Max Jay Rob Sunny Autumn Harmony Melody Crystal Destiny Patience Mercy Honor Liberty Willow Hazel
Poppy Ellie Jean Don Ken Bob""".split())  # noqa: SIM905
_PERSON_BEFORE = frozenset("""ask asked asking owe owes owed tell told telling thank thanked met meet meeting saw see
seeing call called calling text texted ping pinged invite invited miss missed love loved hug hugged visit visited
email emailed message messaged cc remind reminded help helped pay paid""".split())  # noqa: SIM905
_PERSON_NEXT = frozenset("""is was has had said says told asked thinks thought wants wanted will would can could
forgot forgets bought made did does went came left took gave brought found sent wrote called texted rang helped owes
lives works gets makes loves likes knows agrees agreed reckons mentioned suggested insisted""".split())  # noqa: SIM905
_OWNED = frozenset("""place house flat apartment mum mom dad mother father wife husband boyfriend girlfriend partner
fiancé fiance sister brother son daughter kids children parents family birthday wedding party car office desk laptop
phone room team idea fault turn cousin ex grandma grandpa nan aunt uncle""".split())  # noqa: SIM905
_OPINION_VERBS = (b"think ", b"thinks ", b"guess ", b"heard ", b"hope ")
_PERSON_VERBS = (b"saw ", b"met ", b"meet ", b"ask ", b"asked ", b"tell ", b"told ", b"ping ", b"pinged ", b"called ",
                 b"texted ", b"thank ", b"thanked ", b"invite ", b"invited ", b"remind ", b"reminded ", b"hug ",
                 b"ran into ", b"bumped into ", b"visit ", b"visited ", b"phoned ", b"emailed ", b"messaged ",
                 b"dm ", b"dm'd ", b"cc ") + _OPINION_VERBS
_CHAT_WORDS = frozenset("haha hehe kinda lets ive yeah yep nope okay lmao tbh idk omg lol".split())  # noqa: SIM905
_JOINING = frozenset("and from just also".split())  # noqa: SIM905  # in _VERBS for "Rosa and I", but no verbs

_PARTICLE_WORDS = "van von de der den da di du le la dos das del della bin ibn al el ter ten zu y Ó Ní Nic Uí Ua"
_PARTICLES = frozenset(_PARTICLE_WORDS.split())
_PARTICLE_IN = re.compile(rf" (?:{'|'.join(_PARTICLE_WORDS.split())}) [A-Z]")
_PARTICLE_AFTER = re.compile(r" (?:van|von|de|van der|van den|von der|ter|ten|da|di|dos|del|della) [A-Z]")
_TOKEN = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*")
_AND = r"(?:and|&|\+|en|und|et|y|e|og|och|i|a|és|ja|și|dan)"
_CONJ = re.compile(rf"[ \t]*(?:,[ \t]*(?:{_AND}[ \t]+)?|[ \t]+{_AND}[ \t]+)")
# Lists of people ("Ingrid, Pavel and I", "Marek/Zofia/Bartek", "Kenta & Ayaka & me"): two capitalised words
# joined as list items, found on the Latin-1 bytes (a leading character class: fast to scan for; the word is
# taken whole, as backing off into it can never reach a separator).
_LIST_PAIR = re.compile(rb"[A-Z][a-z\xdf-\xff]++(?:, | and | & | \+ |/| y | und | et | e | en | i | og | och | ve | a "
                        rb"| \xe9s | ja | \xffi | dan )[A-Z]")
# After a list of people comes a verb or a function word; a noun makes it a list of things ("Amber and Jade beads").
_AFTER_LIST = frozenset("""at on in to for from with are were have had will would went came said and or but who as
over about this that the we they is was can could should also both all left joined""".split()) | _VERBS  # noqa: SIM905
_LIST_SEP = re.compile(rf"[ \t]*(?:,[ \t]*(?:{_AND}[ \t]+)?|[ \t]+(?:{_AND}|ve)[ \t]+)|/")
# Syllables of romanised Korean and Mandarin given names.
_SYLLABLES = frozenset("""ji ho sung min seo yeon hyun woo jae eun soo su young hee jin won seok hoon yoon kyung mi na
ye jun bin ah ha do yun hye hwa jung joon sang chul dong kyu tae gyu han jeong seung hyuk hoon yong ok sook ja
in il mei xin li wei xiao jia yu ming hui ling yi hao jie fang lan qing ying zhi jun hong yan hua xiu tian
chen yang lin""".split())  # noqa: SIM905
# "the Harcourts and the Delgados are coming" (not "on the Maas."): a verb or another family must follow
_FAMILY = re.compile(r"([A-Z][a-z]{2,}s)\b(?!['’])(?=[ \t]+(?:and|&|are|were|have|had|came|said|invited)[ \t])")
_SELF_ARTICLE = re.compile(r"(?:o|a|la|el|der|die|de|het)[ \t]+(?=[^\W\d_])")
_SELF_ITEM = re.compile(r"(?i:me|I|myself|moi|ich|yo|eu|io|jag|mig|ik|jeg|ja|én|minä|ben)\b")
_SELF_WORDS = frozenset("me i myself moi ich yo eu io jag mig ik jeg ja én minä ben".split())  # noqa: SIM905
# The writer first in a list of people ("me and andrzej", "me & mads", "w/ sunny and jun ho"), or last ("Saskia
# & I"): found by substring on the lower-cased text.
_SELF_JOINS = (b"me and ", b"me & ", b"me + ", b"me, ", b"w/ ", b"ik en ", b"eu e ", b"ich und ", b"moi et ", b"yo y ",
               b"io e ", b"jag och ", b"jeg og ", b"ja i ")  # "Ik en Jelle", "Eu e o Caio"
_JOINS_SELF = (b" & i ", b" and i ", b" + i ", b" og jeg ", b" och jag ", b" und ich ", b" en ik ", b" et moi ",
               b" y yo ", b" e eu ", b" e io ", b" i ja ", b" a j\xe1 ", b" \xe9s \xe9n ", b" ja min\xe4 ",
               b" ve ben ", b" \xffi eu ", b" dan saya ")  # "Astrid og jeg", "Ximena y yo"
_TITLES = sorted(TITLE_WORDS | _SOFT | frozenset(_MORE_TITLES.split()), key=len, reverse=True)


def _by_first_letter(alternatives: list[str], word_start: bool = False) -> str:
    """``(?:a|b|...)`` for regexes that each start with a letter, grouped by that letter in their order: the
    same matches, but the regex engine tries one group at a capital instead of every alternative, and skips
    to the next of those letters fast. ``word_start``: only where no word character or dot comes before."""
    groups: dict[str, list[str]] = {}
    for alternative in alternatives:
        groups.setdefault(alternative[0], []).append(alternative[1:])
    bound = r"(?<![\w.]{})" if word_start else ""
    return "(?:" + "|".join(f"{first}{bound.format(first)}(?:{'|'.join(rests)})"
                            for first, rests in groups.items()) + ")"


# One title or a chain of them ("Herr Dr.-Ing.", "dr. ir.", "Dott.ssa"); lower-case ones only with their dot.
_CAPITAL_TITLES = [r"Sig\.ra", r"Dott\.ssa", r"Prof\.ssa", r"Avv\.ssa", r"Pr\.", r"Fr\.", r"Dr\.-Ing\.?",
                   r"Dipl\.-Ing\.?", r"M\.(?= [A-Z][a-z]{2})", r"D-na", r"Dl\."]  # "M. Garnier", "d-na Mureșan"
_LOWER_TITLE_ALT = [r"dr\.", r"ir\.", r"prof\.", r"ing\.", r"drs\.", r"mr\.", r"dott\.ssa", r"prof\.ssa", r"sig\.ra",
                    r"dott\.", r"avv\.", r"d-na", r"dl\.", r"hab\.", r"dr(?=[ \t])"]
_TITLE_ALT = _by_first_letter(_CAPITAL_TITLES + _LOWER_TITLE_ALT + [rf"{title}\.?" for title in _TITLES])
_TITLE = re.compile(rf"(?:{_TITLE_ALT}[ \t]+)+")
_TITLE_ANY = re.compile(rf"(?<![\w.])(?:{_TITLE_ALT}[ \t]+)+(?=[^\W\d_])")
# Where a title can start: a capitalised title (a leading group of literals lets the regex engine skip to
# one of their letters fast), or one of the lower-case titles with their dot, found by substring search.
_CAPITAL_TITLE_ALT = _by_first_letter(_CAPITAL_TITLES + [rf"{title}\.?" for title in _TITLES if title[0].isupper()],
                                      word_start=True)  # lower-case titles are found by ``_LOWER_TITLES``
_TITLE_CAPITAL = re.compile(rf"{_CAPITAL_TITLE_ALT}[ \t]+(?:{_TITLE_ALT}[ \t]+)*(?=[^\W\d_])")
_LOWER_TITLES = (b"dr.", b"ir.", b"prof.", b"ing.", b"drs.", b"mr.", b"dott.", b"sig.ra", b"avv.", b"d-na ", b"dl. ",
                 b"hab.", b"dr ", b"meneer ", b"mevrouw ", b"pani ", b"pan ", b"fru ", b"doktor ", b"tohtori ")
_AT_NAMES = """here channel everyone everybody all alle allen tous toutes todos todas tutti iedereen allemaal wszyscy
kaikki alla team property staticmethod classmethod dataclass abstractmethod
override deprecated param params return returns raise raises throws throw type see since version author link code
example note todo fixme media import keyframes font-face charset supports page namespace include mixin extend
apply tailwind layer pytest jit njit vectorize cache lru_cache wraps contextmanager app router route click command
test fixture mark patch interface implementation end synthesize protocol property autoreleasepool selector
functools typing abc dataclasses jax torch tf np mock unittest celery numba pytest njit
"""
_AT_WORDS = frozenset(_AT_NAMES.split())
# Handles of bots, teams and rotas, not people: "@dependabot", "@devops-oncall", "@platform-team".
_GROUP_HANDLE = re.compile(r"(?i)(?:bot|\[bot\]|oncall|on-call|team|squad|crew|guild|group|admins|devs|ops|support"
                           r"|everyone)$|^(?:team|all|oncall)[-_]|^(?:renovate|mergify|codecov|github-actions|netlify|vercel"
                           r"|coveralls|sonarcloud|pre-commit-ci|copilot|stale)$")
_SURNAME_SHAPE = re.compile(r"(?:Mac|Mc|O['’]|Fitz|D['’])[A-Z]|[A-Z][a-z]+-[A-Z][a-z]+$")  # MacAllister, Smith-Jones
_UNIT_LETTER = re.compile(r" [A-Z](?![\w'’])")
# Words of an organisation's name: one signs a letter or follows the name ("Banco Santander", "Stadtwerke München",
# "Ufficio Anagrafe del Comune di Torino").
_ORG_WORDS = frozenset("""Bank Banco Banca Banque Ihre Ihr Your Votre Vostro Team Office Ufficio Büro Kundenservice
Service Services Support Customer Stadtwerke Comune Gemeente Municipality Council University Universität Universidad
Università Université Hospital Clinic Klinik Inc Inc. Ltd Ltd. GmbH AG BV B.V. SA S.A. SpA LLC Corp Corp. Company Group
Foundation Stiftung Association Verein School Schule College Institute Institut Instituto Agency Department Ministry
Ministerium Anagrafe Ayuntamiento Mairie Rathaus Stadt Sparkasse Versicherung Insurance Airlines Telecom""".split())  # noqa: SIM905
# Words a greeting may follow mid-line ("hi all, and hi Priscilla", "hey hey Marisol", "oh hi Mark").
_BEFORE_GREETING = frozenset("and oh so well but ok okay also hey hi hello yo good".split())  # noqa: SIM905
_EPONYM_NOUNS = frozenset("""law laws theorem identity formula constant equation equations principle rule lemma
conjecture algorithm method inequality paradox hypothesis test distribution disease syndrome number numbers problem
razor triangle circle curve series transform function effect model criterion estimator sieve spiral
sequence""".split())  # noqa: SIM905
_NOUN_AFTER = re.compile(r" (?!(?:is|was|are|were|says|said|of|and|or|in|for|to|that|which|has|had|holds|applies)\b)"
                         r"[a-z]{3,}")  # "law school": the noun goes on
_ARTICLES = frozenset("der die das den dem des the la le el il lo les los las".split())  # noqa: SIM905
# What follows a place's name, not a person's: "ATM on Queen Street", "Noël Coward Theatre", "Victoria Station".
# (Not "Park", "Hall", "Hill", "Church" or "House": surnames too.)
_PLACE_NOUNS = frozenset("""Street St St. Road Rd Avenue Ave Lane Ln Boulevard Blvd Square Sq Station Straße Strasse
Weg Platz Gasse Allee Theatre Theater Hospital School College University Airport Cathedral Museum Hotel Centre Center
Stadium Arena Mall Gardens Terrace Crescent Quay Wharf Building Library Academy Institute Prize Award
Foundation""".split())  # noqa: SIM905
_THING_HEADS = frozenset("""Hurricane Storm Typhoon Cyclone Tropical Operation Project Camp Fort Mount Mt Lake Cape
Port Hotel Restaurant Café Cafe Villa Casa Club Studio Radio Bar Pub Hurrikan Sturm Orkan Tormenta Huracán Tempête
Ouragan Stormen""".split())  # noqa: SIM905
_SAINT_WORDS = frozenset("San Santa Santo São Sao Saint Sainte Sankt Sint".split())  # noqa: SIM905
_SAINTS = ("São ", "Sao ", "Santo ", "St. ", "St ", "Ste. ", "Saint ", "San ", "Santa ", "Sankt ", "Sint ")

# Words before a capitalised name, lower-cased, by context (phrases of up to three words).
_GREETINGS = """hi hey hello hiya dear dearest morning good_morning good_afternoon good_evening hallo hoi beste lieve
lieber liebe bonjour salut cher chère hola querido querida estimado estimada ciao caro cara gentile olá oi hej cześć
szanowny szanowna yo kia_ora g'day salam assalamu_alaikum merhaba namaste hei ahoj szia moin servus bună salut dragă
stimate stimată halo hai dobrý_den dzień_dobry kedves tere sveiki labas zdravo bok pozdrav moi terve heippa"""
_WITHS = """with together_with alongside thanks_to thank_you_to shout-out_to shoutout_to kudos_to met mit avec con com
grâce_à gracias_a grazie_a dank_aan dank_an dankzij ask tell ping cc invite meet me_and w"""
_THANKS_WORDS = """thanks thank_you thx cheers bye see_you danke bedankt merci gracias grazie obrigado obrigada tack
dziękuję"""
_BEFORE = {w.replace("_", " "): kind for kind, words in (("greet", _GREETINGS), ("with", _WITHS),
                                                       ("thanks", _THANKS_WORDS), ("rel", _RELATIONS))
          for w in words.split()}
_SIGNOFF = (r"Many thanks and (?:kind |best |warm )?regards|Thanks and (?:kind |best )?regards|"
            r"Best(?: regards| wishes)?|Regards|Kind regards|Warm regards|Many thanks|Thanks(?: again)?|Thank you|"
            r"Cheers|Warmly|Sincerely|Yours(?: truly| sincerely)?|Love|Talk soon|Take care|All the best|Groeten|"
            r"Groetjes|Hartelijke groet(?:en)?|Met vriendelijke groet(?:en)?|Viele Grüße|Liebe Grüße|Beste Grüße|"
            r"Mit freundlichen Grüßen|Herzliche Grüße|LG|VG|Cordialement|Bien à vous|Amitiés|Bisous|Saludos|"
            r"Un abrazo|Atentamente|Saluti|Cordiali saluti|Un saluto|Abraços|Atenciosamente|Pozdrawiam|Hälsningar|"
            r"Med vänlig hälsning|Mvh|Hilsen|Ta|Danke(?: (?:&|und) (?:LG|VG))?|Merci|Gracias|Grazie|Obrigad[oa]|Tack|"
            r"Un saludo|Saludos cordiales|Gr\.|Groet|Kh\.|Peace|Namaste|Hugs|xo|xoxo|"
            r"Med vänliga hälsningar|Vänliga hälsningar|Venlig hilsen|Venlige hilsner|Med venlig hilsen|"
            r"Vennlig hilsen|Med vennlig hilsen|S pozdravem|Üdvözlettel|Üdv|Ystävällisin terveisin|Terveisin|"
            r"Pozdrawiam serdecznie|Z poważaniem|Pozdrowienia|Cu stimă|Cu drag|Salutări|Saygılarımla|Sevgiler|"
            r"Selamlar|Hormat saya|Salam|Met groet|Mit besten Grüßen|(?:Viele |Liebe |Beste |Herzliche )?Grüße"
            r"(?: aus [^\n,]{1,40})?|Bien cordialement|Cordialmente|Un abbraccio|A presto|Beijos|Um abraço|Besos|"
            r"Cheers mate|Cheers all|"
            r"--|—|–")
_REFS = (r"References?(?:[ \t]+available)?|Referees?(?:[ \t]+\d+)?|Referenzen|Referenties|Références|Referencias|"
         r"Referenze|Referências|Referencje|Referenser|Referanser|Referencer|Suosittelijat|Referenciák|Referințe|"
         r"Referanslar|Referensi|"
         r"(?:Co-authored|Signed-off|Reviewed|Reported|Suggested|Acked|Tested)-by|To|Cc|Bcc|From")  # and mail headers
_HEADERS = r"To|Cc|Bcc|From"  # a mail header only with its colon: "To: Ana", but not "to Cabo de São Vicente"
_ROLE_STEMS = (b"mentor", b"advis", b"supervis", b"manager", b"reported to", b"reports to", b"reporting to",
               b"worked under", b"working under", b"referee", b"contact person", b"promotor", b"betreuer", b"doktor",
               b"team lead", b"tutor", b"relatore", b"directeur de th", b"director de tesis", b"orientador")
_INLINE_REFS = re.compile(rf"(?:(?<=[.;] )|(?<= - )|(?<= – ))(?i:{_REFS}):[ \t]*")
# A person's role on a CV or in a thesis, then their name: "Internship mentor: Hiroshi Sato", "Worked under Sarah
# O'Donnell", "Reported to Dr. Amara Obi (CTO)", "Betreuer: Prof. Jan Smit".
_ROLE = re.compile(r"(?i:(?<![\w-])(?:mentor|advisor|adviser|supervisor|supervised[ ]by|(?:line[ ])?manager"
                   r"|reported[ ]to|reports[ ]to"
                   r"|reporting[ ]to|worked[ ]under|working[ ]under|referee|contact[ ]person|(?:co-)?promotor"
                   r"|betreuer(?:in)?|doktorvater|doktormutter|team[ ]lead|tutor|relatore|directeur[ ]de[ ]thèse"
                   r"|director[ ]de[ ]tesis|orientador(?:a)?)s?)"
                   r"(?:[ \t]*\([^)\n]{1,60}\))?[ \t]*[:–—-]?[ \t]*(?=[A-Z]|[dip]r?\.)")  # "Mentor (Fellowship): X"
_TAIL = re.compile(r"(?:^|(?<=\n)|[—–~]|\s-|(?<=\n)/|\bxx?\b|,)[ \t]*(?=[^\W\d_])([^\n,—–]{2,60}?)[ \t]*"
                   r"(?:\([^)\n]*\))?[^\w\n]*\Z")  # the last line's closing name, after a line start or a dash
_INNER_DASH = re.compile(r"[ \t][-—–~][ \t]*(?=[^\W\d_][^-—–~]*\Z)")
# A mail app's own last line ("Sent from my iPhone"), with nothing after it.
_SENT_FROM = re.compile(r"(?i)(?:sent from|enviado desde|von meinem|verzonden (?:vanaf|met)|envoyé de)[^\n—–-]*$")
# A capitalised word at a sentence start (group 1); the text's first word is checked on its own, since a leading
# character class lets the regex engine skip ahead fast (2.5x faster than lookbehinds).
_UPPER = rb"A-Z\xc0-\xd6\xd8-\xde"  # Latin-1's capitals and lower-case letters (with ',': "Anna, ...")
_LOWER = rb"a-z,\xdf-\xf6\xf8-\xff"
_SENTENCE_START = re.compile(rb"(?:[.!?;:] |\n)([%s][%s]++(?:'[%s])?) " % (_UPPER, _LOWER, _LOWER))
_FIRST_WORD = re.compile(rb"([%s][%s]++(?:'[%s])?) " % (_UPPER, _LOWER, _LOWER))
_LINE_BODY = (rf"[ \t]*(?:(?P<signoff>(?:{_SIGNOFF})[ \t]*[,!.:]?[ \t]*(?:\n[ \t]*){{0,2}})"
              rf"|(?P<refs>[#*>-]*[ \t]*(?:(?i:{_HEADERS})[ \t]*:|(?!(?i:{_HEADERS})\b)(?i:{_REFS})\b)[ \t*:—–-]*\n?)"
              r"|(?P<greet>(?i:hi|he+y+|hello|hiya|heya|morning|dear|yo)[ \t,]+(?=[a-z])))")
_LINE_TRIGGER = re.compile("^" + _LINE_BODY, re.M)
# The line break before each trigger line: a leading literal lets the regex engine skip from break to break, where
# "^" (re.M) is tried at every character.
_BREAK_BEFORE_TRIGGER = re.compile(r"\n(?=" + re.sub(r"\(\?P<\w+>", "(?:", _LINE_BODY) + ")")
_REDDIT_USER = re.compile(r"(?<![\w/.-])u/([A-Za-z0-9_-]{3,20})(?![\w/-])")
_MENTION = re.compile(r"(?<![^\s(\[{\"'“‘,;:!?+—–])@(?=\w)")  # at the start, after a space, opening mark, + or dash
# Slack's mention with its display name: "<@U04ABCD12|pedro>" (a bare user id names nobody by itself).
_CHAT_ID_MENTION = re.compile(r"<@[A-Z0-9]{6,}\|([^>\n]{1,40})>")
_PLUS_MENTION = re.compile(r"(?:^|(?<=[\s(]))\+([A-Z][^\W\d_]+(?: [A-Z][^\W\d_'’-]+)?)(?=[\s,.:;!?)]|$)", re.M)
_HANDLE = re.compile(r"\w(?:[\w.-]*\w)?")
_DOMAIN = re.compile(r"\.(?:com|org|net|edu|gov|co|uk|example|test|local|invalid)$", re.I)  # not .dev: "@kaito.dev"
_WORD_END = frozenset(" ,.;:!?\n")
_FENCE = re.compile(r"^[ \t]*(?:```|~~~)", re.M)
_REF_SPLIT = re.compile(r"[;,][ \t]*")
_REF_LINE = re.compile(r"[ \t]*(?:[-*•>]|\d+[.)])?[ \t]*")


_STARTS_NO_NAME, _STARTS_NAME, _STARTS_NAME_BEFORE_PARTICLE, _STARTS_NAME_UNLESS_LOWER = 0, 1, 2, 3


def _ordinary(word: str) -> bool:
    """A stop word, prose word or common word: never a name on its own ("The", "Python", "Will")."""
    return word in _STOP or word in _PROSE or word in _COMMON_WORDS


def _common_first_name(names: NameSets, word: str) -> bool:
    """A top first name that is no common word, stop word or prose word ("Priya", not "Will" or "May")."""
    return word in names.top_first and len(word) > 2 and not word.isupper() and not _ordinary(word)


@functools.lru_cache(maxsize=1 << 16)
def _word_start_kind(names: NameSets, word: str) -> int:
    """What a sentence starting with ``word`` says of a name, as far as the word alone tells (``_start_kind``)."""
    word = _without_possessive(word)
    if not word.isalpha():
        return _STARTS_NAME
    if _common_first_name(names, word):
        return _STARTS_NAME_UNLESS_LOWER
    return _STARTS_NAME_BEFORE_PARTICLE if word in names.first else _STARTS_NO_NAME


def _syllable_name(word: str, joined: bool = False) -> bool:
    """A Korean or Chinese given name written with a hyphen: "Ji-ho", "Sung-min", "Seo-yeon", "Mei-Xin"; with
    ``joined`` (in a list of people) also run together: "Minji", "Hyunwoo"."""
    if not word[:1].isupper():
        return False
    w = word.lower()
    parts = w.split("-")
    if len(parts) == 2:
        return all(p in _SYLLABLES for p in parts)
    return joined and len(parts) == 1 and any(w[:k] in _SYLLABLES and w[k:] in _SYLLABLES for k in range(1, len(w)))


def _without_possessive(word: str) -> str:
    """``word`` without a final "'s" ("Yasmin's" -> "Yasmin"; "Al's" -> "Al", but "I's" stays)."""
    return word[:-2] if word.endswith(("'s", "’s")) and len(word) > 3 else word


def _run(text: str, pos: int) -> tuple[int, int, list[str]] | None:
    """The capitalised name tokens at ``pos`` ("Miriam Kovacs", "Jane van der Berg"): (start, end, words),
    at most 4 words; None if ``pos`` starts no capitalised non-stop word."""
    words: list[str] = []
    start = end = pos
    i = pos
    while len(words) < 4:
        m = _TOKEN.match(text, i)
        if not m:
            break
        word = m.group()
        if word in _PARTICLES:  # "van der" inside a name, or "de Groot" after a title
            nxt = _TOKEN.match(text, m.end() + 1) if text[m.end():m.end() + 1] == " " else None
            if nxt and nxt.group() in _PARTICLES and text[nxt.end():nxt.end() + 1] == " ":
                nxt = _TOKEN.match(text, nxt.end() + 1)  # "van der Heijden"
            if nxt and nxt.group()[0].isupper():
                i = m.end() + 1
                continue
            break
        if len(word) == 1 and word.isupper() and text.startswith(". ", m.end()):  # "M. Lindqvist"
            nxt = _TOKEN.match(text, m.end() + 2)
            if nxt and nxt.group()[0].isupper():
                words.append(word)
                i = m.end() + 2
                continue
        base = _without_possessive(word)
        possessive, word = base != word, base  # "Yasmin's wedding": the name ends here
        if not word[0].isupper() or word in _STOP or (words and len(word) < 2):
            break
        words.append(word)
        end = m.start() + len(word)
        if possessive:
            break
        if text[end:end + 1] != " ":
            break
        i = end + 1
    return (start, end, words) if words else None


def _group(text: str, pos: int) -> tuple[list[tuple[int, int, list[str]]], int]:
    """Runs joined by commas and "and" ("Priya, Tomasz and Lena Fischer"); returns them and the end."""
    runs = []
    while True:
        title = _TITLE.match(text, pos)  # "with Aunt Philippa and Uncle Roderick"
        if title and runs and not text.startswith("M. ", pos):  # "J. Okafor and M. Brandt": an initial
            pos = title.end()
        run = _run(text, pos)
        if run is None:
            break
        runs.append(run)
        pos = run[1]
        conj = _CONJ.match(text, pos)
        if not conj or not text[conj.end():conj.end() + 1].isupper():
            break
        pos = conj.end()
    return runs, runs[-1][1] if runs else pos


def _closed(text: str, end: int) -> bool:
    """True when a name ends at a comma, colon, exclamation mark, line end or end of text."""
    rest = text[end:end + 4].lstrip(" \t")
    return (not rest or rest[0] in ",:!\n;.?)(<|" or rest[0] > "\u2000"  # an emoji: "Bea 🌻"
            or rest.startswith(("xx", "x\n", "xo")) or rest == "x")  # kisses: "Love, Rose xx"


class _Finder:
    """Context rules over one document; ``names`` confirm words, ``owner`` is never replaced."""

    def __init__(self, view: _View, names: NameSets, owner_parts: frozenset[str], owner_handles: frozenset[str]):
        self.text, self.view, self.lo, self.find_all = view.text, view.b, view.lo, view.find_all
        self.names, self.owner_parts, self.owner_handles = names, owner_parts, owner_handles
        self.owner_lower = frozenset(p.lower() for p in owner_parts)
        self._lower: dict[str, bool] = {}
        self._strong: dict[str, bool] = {}

    def known(self, word: str) -> bool:
        return word in self.names.first or word in self.names.last

    def lower_elsewhere(self, word: str) -> bool:
        """True when the word also occurs in lower case in the document (then it is a common word here)."""
        if word not in self._lower:
            w, text = word.lower(), self.text
            found, i = False, text.find(w, 1)
            while i != -1 and not found:
                after = text[i + len(w):i + len(w) + 2]
                found = text[i - 1] in " \n(" and after[:1] in _WORD_END and not (
                    after[:1] in ".@" and after[1:].isalnum())  # "ravi.menon@...": an address, not a word
                i = text.find(w, i + 1)
            self._lower[word] = found
        return self._lower[word]

    def weak_name(self, words: list[str]) -> bool:
        """A name in a weak context: a common first name not used as a lower-case word, or a known first
        name with a surname."""
        first = words[0]
        if len(first) == 1:  # an initial: "M. Lindqvist"
            return len(words) > 1 and words[-1] in self.names.last
        if first in _COMMON_WORDS or self.lower_elsewhere(first):
            return len(words) > 1 and self.known(words[1]) and first in self.names.first
        return first in self.names.top_first or (len(words) > 1 and first in self.names.first)

    def _start_kind(self, word: str) -> int:
        """Whether a sentence starting with ``word`` may start with a name: always (a strong first name, or not a
        plain word: "Anna," "O'Neill"), only before a particle surname (another known first name), or never."""
        kind = _word_start_kind(self.names, word)
        if kind == _STARTS_NAME_UNLESS_LOWER:  # strong unless used as a lower-case word in this document
            word = _without_possessive(word)
            if self.strong_first(word):
                return _STARTS_NAME
            return _STARTS_NAME_BEFORE_PARTICLE if word in self.names.first else _STARTS_NO_NAME
        return kind

    def may_start_name(self, word: str, end: int) -> bool:
        """A strong first name, or a known one before a particle surname ("Jorinde van den Berg")."""
        return self.strong_first(word) or (word in self.names.first
                                           and _PARTICLE_AFTER.match(self.text, end) is not None)

    def strong_first(self, word: str) -> bool:
        """A common first name that is no prose word here: enough to be a name without other context."""
        strong = self._strong.get(word)
        if strong is None:
            strong = self._strong[word] = self._strong_first(word)
        return strong

    def _strong_first(self, word: str) -> bool:
        return (_common_first_name(self.names, word) or _syllable_name(word)) and not self.lower_elsewhere(word)

    def inflected_first(self, word: str, genitive: bool = False) -> bool:
        """A common first name with a case ending of Polish, Czech, Hungarian or Turkish ("Agatą", "Kubą", "Kateřinou",
        "Tomášem", "Dórával", "Leventével", "Burak'la"); with ``genitive`` (a list joined by Finnish "ja" or Polish
        "i") also "Sannan", "Basi": endings that too many place names have ("Milan")."""
        if len(word) < 4 or not word[0].isupper():
            return False
        if "'" in word or "’" in word:
            return self.strong_first(re.split("['’]", word)[0])
        for ending, base in _CASE_ENDINGS + (_GENITIVE_ENDINGS if genitive else ()):
            if word.endswith(ending) and len(word) - len(ending) >= 2:
                stem = word[:-len(ending)] + base
                if stem[-1] in _LONG_VOWELS:  # Hungarian lengthens a final vowel: "Dórá-val" is Dóra's
                    stem = stem[:-1] + _LONG_VOWELS[stem[-1]]
                if self.strong_first(stem):
                    return True
        return False

    def accept(self, kind: str, run: tuple[int, int, list[str]], closed: bool, titled: bool,
               soft: bool = False) -> bool:
        words = run[2]
        if any(w in self.owner_parts for w in words):
            return False
        if titled:  # "Dr. Pepper" is a drink; "Coach Renata" needs a known name
            if soft:  # "Sr. Data Scientist" is a job title
                return words[0] not in _PROSE and (words[0] in self.names.first or self.known(words[-1]))
            return words[0] not in _PROSE or (len(words) > 1 and (self.known(words[-1]) or len(words) == 2
                                                                  and words[-1] not in _PROSE))  # "Prof. Jan de Vries"
        if kind == "rel":
            return (words[0] in self.names.first or _syllable_name(words[0])) and words[0] not in _PROSE and (
                not self.lower_elsewhere(words[0]))
        if kind == "greet":  # "Buongiorno Italia!", "Hola Mundo": a greeting to a place or the world
            return words[0] not in _GEO and (self.known(words[0]) or (closed and not self.lower_elsewhere(words[0])))
        if kind in ("signoff", "thanks", "refs"):
            if words[0] in _PROSE or words[0] in _STOP:  # "auth, None" ends a line of code, not a letter
                return False
            if any(w in _ORG_WORDS for w in words):
                return False  # "Atentamente,\nBanco Santander", "Ihre Stadtwerke München": an organisation signs
            if kind == "signoff" and len(words) > 1 and _PARTICLE_IN.search(self.text, run[0], run[1]):
                return True  # "Met vriendelijke groet,\nWillemijn van der Heijden"
            return words[0] in self.names.first or (kind != "thanks" and len(words) > 1 and self.known(words[-1]))
        return self.weak_name(words) or len(words) == 1 and self.inflected_first(words[0])

    def spans(self) -> Iterator[tuple[int, int, str]]:
        """(start, end, name or handle) of every name the context rules find."""
        text = self.text
        for m in self._line_triggers():
            if m.lastgroup == "refs":
                yield from self._references(m.end())
            elif m.lastgroup == "greet":
                yield from self._lower_name(m.end())  # "hi priya —"
            else:
                yield from self._context("signoff", m.end())
        if "@" in text:
            for m in _MENTION.finditer(text):
                yield from self._mention(m.end())
            if "<@" in text:  # Slack's mention with a display name: "<@U04ABCD12|pedro>"
                for m in _CHAT_ID_MENTION.finditer(text):
                    yield m.start(1), m.end(1), m.group(1)
        if "+" in text:  # a document's mention: "+Priya Raman can you review"
            for m in _PLUS_MENTION.finditer(text):
                words = m.group(1).split()
                if words[0] in self.names.first and words[0] not in self.owner_parts and words[0] not in _STOP:
                    yield m.start(1), m.end(1), m.group(1)
        if "u/" in text:  # Reddit's user names: "quoted from u/throwaway_brennan"
            for m in _REDDIT_USER.finditer(text):
                if m.group(1).lower() not in self.owner_handles:
                    yield m.start(1), m.end(1), m.group(1)
        lo = self.lo
        # Both regexes are case-insensitive, so slow over a whole document: a stem scan goes first (~10x faster).
        if b"refer" in lo or b"-by:" in lo:
            for m in _INLINE_REFS.finditer(text):
                yield from self._references(m.end())
        for pos in sorted({m.end() for stem in _ROLE_STEMS for i in self.find_all(stem)
                           if (m := _ROLE.search(text, max(0, i - 8), i + 40)) is not None}):
            yield from self._role(pos)
        yield from self._tail()
        yield from self._with_self()
        yield from self._lower_after_verb()
        yield from self._chat_speakers()
        yield from self._post_titles()
        yield from self._owners()
        for i in self.find_all(b"the "):  # "the Harcourts and the Delgados are coming": a family by its surname
            m = _FAMILY.match(text, i + 4)
            if m is not None and (i == 0 or not text[i - 1].isalnum()):
                name = m.group(1)
                stem = name[:-2] if name.endswith("es") and name[:-2] in self.names.last else name[:-1]
                if stem in self.names.last and self._family_ok(stem):
                    yield m.start(1), m.end(1), name
        if b"/" in self.view and b"(" in self.view:
            for m in _PRONOUNS.finditer(text):  # "Seun Adebayo (he/him) is typing"
                if not any(w in self.owner_parts for w in m.group(1).split()):
                    yield m.start(1), m.end(1), m.group(1)
        for pos in sorted({m.start() for m in _LIST_PAIR.finditer(self.view)}):
            yield from self._people_list(pos)
        seen: set[int] = set()
        for pos in self._title_starts():
            seen.add(pos)
            yield from self._context("title", pos)
        # Most sentences start with one of a few hundred words, none a common first name: one lookup per word.
        kinds: dict[str, int] = {}
        first = _FIRST_WORD.match(self.view)
        for m in itertools.chain((first,) if first else (), _SENTENCE_START.finditer(self.view)):
            s, e = m.span(1)
            word = text[s:e]
            kind = kinds.get(word)
            if kind is None:
                kind = kinds[word] = self._start_kind(word)
            if kind == _STARTS_NAME or kind == _STARTS_NAME_BEFORE_PARTICLE and _PARTICLE_AFTER.match(
                    text, s + len(_without_possessive(word))):
                yield from self._bare(s, verb=True, after_colon=self.view[m.start()] == 58)
        # Capitalised words after a lower-case word ("with Priya", "Hi, Tomasz"), a short capitalised word ("Dr.
        # Kovacs", "Mr Okafor"), an initial or "w/" (``case_view``).
        for candidates in after_candidates(case_view(self.view)):
            for c in candidates:
                if c not in seen:
                    seen.add(c)
                    yield from self._candidate(c)
        # Capitals outside Latin-1 ('ÿ' in the view) after a space: "Cześć Łukasz", "Bună Ștefan", "with Žofie".
        i = self.view.find(b"\xff")
        while i >= 0:
            if i not in seen and text[i].isupper() and (i == 0 or text[i - 1] in " \t\n(\"'"):
                seen.add(i)
                yield from self._candidate(i)
            i = self.view.find(b"\xff", i + 1)

    def _line_triggers(self) -> Iterator[re.Match[str]]:
        """What ``_LINE_TRIGGER.finditer`` over the text gives (sign-offs, references, greetings at line starts),
        found from the line breaks before them."""
        text, end = self.text, 0
        for pos in itertools.chain((0,), (m.end() for m in _BREAK_BEFORE_TRIGGER.finditer(text))):
            if pos >= end and (m := _LINE_TRIGGER.match(text, pos)) is not None:
                end = m.end()
                yield m

    def _title_starts(self) -> list[int]:
        """Where ``_TITLE_ANY.finditer`` over the text would match, found about 3x faster."""
        text, starts, end = self.text, [], 0
        lower = [i for stem in _LOWER_TITLES for i in self.find_all(stem)]
        for pos in sorted({m.start() for m in _TITLE_CAPITAL.finditer(text)}.union(lower)):
            if pos >= end and (m := _TITLE_ANY.match(text, pos)):
                if text.startswith("M. ", pos) and text[max(0, pos - 5):pos].endswith(("with ", "and ", ", ", "& ")):
                    continue  # "with M. Lindqvist and T. Nakamura": initials in a list, not "Monsieur"
                starts.append(pos)
                end = m.end()
        return starts

    def _candidate(self, c: int) -> Iterator[tuple[int, int, str]]:
        """The capitalised word at ``c``: a title, or a name after a greeting, "with" or "thanks"."""
        text = self.text
        if _TITLE.match(text, c) and not text.startswith("M. ", c):
            yield from self._context("title", c)
            return
        if text[c:c + 12].split(" ", 1)[0].split("'", 1)[0] in _WORD_NAMES:
            found = list(self._word_name(c))
            if found:
                yield from found
                return
        before = text[max(0, c - 40):c]
        words: list[str] = []
        for _ in range(3):
            before = before.rstrip(" \t,(")  # "our landlord, Vikram", "my therapist (Deborah, the good one)"
            k = max(before.rfind(" "), before.rfind("\n"), before.rfind("\t"))
            word = before[k + 1:].removesuffix("/")  # "w/ Kasia"
            if not word.replace("-", "").isalpha():
                break
            words.insert(0, word.lower())
            before = before[:k + 1]
            kind = _BEFORE.get(" ".join(words))
            rest = before.rstrip(" \t,").split()
            prev = rest[-1] if rest else ""
            if kind == "greet" and prev.isalpha() and prev.islower() and prev not in _BEFORE_GREETING:
                return  # "watched Good Morning, Vietnam", "tickets for Dear Evan Hansen": a title, not a greeting
            if kind:
                yield from self._context(kind, c)
                return
        if words and words[-1] not in _NOT_BEFORE:  # a sentence start needs a verb (``_bare``)
            yield from self._bare(c)
        elif words and words[-1] == "from" and self.text[c:c + 12].split(" ", 1)[0].rstrip(".,;:!?") not in _PLACES:
            yield from self._bare(c)  # "the PR from Dariusz", but "from Charlotte" is a city
        elif words and words[-1] == "that" or not words and before.rstrip().endswith(("—", "–", " -")):
            yield from self._bare(c, verb=True)  # "I learned that Björn speaks", "... — Mirela quoted that"

    def _word_name(self, c: int) -> Iterator[tuple[int, int, str]]:
        """A first name that is also a word ("Will", "Hope", "Mark"), capitalised in the middle of a sentence where
        the word would be lower case, with a person's context: after a verb done to a person ("ask Hope", "owe
        Frank"), before a person's verb ("I think Will is bringing"), or owning a person's things ("Grace's place");
        not on a title-case line ("Hope Street Opening Hours")."""
        text = self.text
        m = _TOKEN.match(text, c)
        if m is None or c < 2 or text[c - 1] != " ":
            return
        token = m.group()
        word = _without_possessive(token)
        if word in self.owner_parts or self._title_case_line(c):
            return
        k = text.rfind(" ", 0, c - 1)
        prev = text[k + 1:c - 1]
        if not prev.isalpha() or not prev.islower():
            return  # a sentence start, or after a capitalised word ("Hope Street" in "at Old Hope Street")
        end = c + len(word)
        nxt = _TOKEN.match(text, end + (3 if token != word else 1))
        after = nxt.group() if nxt is not None and text[end:end + 1] in " '’" else ""
        if token != word:
            person = after in _OWNED
        else:
            person = prev in _PERSON_BEFORE or after in _PERSON_NEXT or (
                len(after) > 4 and after.islower() and after.endswith("ed"))
        if person:
            yield c, end, word

    def _place_next(self, end: int) -> bool:
        """True when the word after a run ending at ``end`` names a place or an institution ("Queen Street")."""
        nxt = _TOKEN.match(self.text, end + 1) if self.text[end:end + 1] == " " else None
        return nxt is not None and nxt.group() in _PLACE_NOUNS

    def _title_case_line(self, c: int) -> bool:
        """True when most words of the line around ``c`` are capitalised (a heading, a title, a product list)."""
        text = self.text
        line = text[text.rfind("\n", 0, c) + 1:(text.find("\n", c) + 1 or len(text) + 1) - 1]
        words = [w for w in line.split() if w[:1].isalpha()]
        return len(words) >= 3 and sum(w[0].isupper() for w in words) * 2 > len(words)

    def _bare(self, c: int, verb: bool = False, after_colon: bool = False) -> Iterator[tuple[int, int, str]]:
        """A name without a context word ("I think Leonie is", "Our landlord, Vikram Malhotra"): a common
        first name, with only known surnames after it; ``verb``: a verb or "'s" must follow (sentence start);
        ``after_colon``: a verb proper, not "and" ("notes: Obi will draft", but "grocery run: Jasmine and
        Basmati rice")."""
        first = _TOKEN.match(self.text, c)  # most candidates are no common first name: settled by one lookup
        word = _without_possessive(first.group()) if first else ""
        if not self.may_start_name(word, c + len(word)) or word in _GEO:
            return
        if c and (self.text[c - 1].isalnum() or self.text[c - 1] in "_-'’"):  # "PyCon", "foo_Anna"
            return
        if self._after_capitalised(c):  # "Mass Ave", "Fifth Floor": part of a proper noun, not a person
            return
        head = self.text[max(0, c - 12):c].rstrip(" ").rsplit(" ", 1)[-1].rsplit("\n", 1)[-1]
        if head in _THING_HEADS:
            return  # "Hurricane Milton", "Operation Barbarossa", "Camp David": named things
        if self.text[max(0, c - 7):c].endswith(_SAINTS):
            return  # "St. Mary's Hospital", "San Sebastián": a place named after a saint
        run = _run(self.text, c)
        if not run or any(w in self.owner_parts for w in run[2]):
            return
        s, e, words = run
        if len(words) > 1 and _SAINT_WORDS.intersection(words):
            return  # "la Basilica di San Marco", "São Paulo", "Cabo de São Vicente": a place named after a saint
        if len(words) > 1 and not all(w in self.names.last or _SURNAME_SHAPE.match(w) for w in words[1:]):
            return  # "Hill Climbing", "Victoria Station": a thing named after a person
        if _UNIT_LETTER.match(self.text, e) or self._place_next(e) or _PLACE_NOUNS.intersection(words[1:]):
            return  # "Wing B", "Block C": part of a building; "Queen Street", "Coward Theatre": a place
        eponym = _TOKEN.match(self.text, e + 3) if self.text.startswith(("'s ", "’s ", "' "), e) else None
        if eponym is not None and eponym.group().lower() in _EPONYM_NOUNS and not _NOUN_AFTER.match(
                self.text, eponym.end()):
            return  # "Euler's identity", "Moore's law is": named after a person (but "Priya's law school friend")
        if verb and not self.text.startswith(("'s", "’s"), e):
            nxt = _TOKEN.match(self.text, e + 1)
            verb = nxt.group() if nxt else ""
            if (verb not in _VERBS or after_colon and verb in _JOINING) and not (
                    len(verb) > 4 and verb.islower() and verb.endswith("ed")):
                return  # "Mirela quoted", "Jorinde presented": a verb in the past
        yield s, e, " ".join(words)

    def _after_capitalised(self, c: int) -> bool:
        """True when one space separates ``c`` from a capitalised word that does not start a sentence."""
        text = self.text
        if c < 2 or text[c - 1] != " " or not text[c - 2].isalpha():
            return False
        k = c - 2
        while k > 0 and text[k - 1].isalpha():
            k -= 1
        if not text[k].isupper():
            return False
        before = text[:k].rstrip(" \t")
        return bool(before) and before[-1] not in ".!?:\n\"'(" and not before.endswith(("—", "-"))

    def _tail(self) -> Iterator[tuple[int, int, str]]:
        """A sign-off on the last line ("Thanks again,\nLucas", "... — Tariq", "xx Bea", "Ta, Gareth")."""
        text = self.text.rstrip()
        line_start = text.rfind("\n") + 1
        if _SENT_FROM.match(text, line_start):  # "Iñaki\nEnviado desde mi móvil": the name is the line before
            text = text[:line_start].rstrip()
            line_start = text.rfind("\n") + 1
        m = _TAIL.search(text, max(0, line_start - 1))  # from the line break: "\n- Kenji" is a dash sign-off
        if not m:
            return
        dash = _INNER_DASH.search(m.group(1))
        if dash is not None:  # ", next time! - Ilse": the sign-off is after the last dash
            m = _TAIL.search(text, m.start(1) + dash.start()) or m
        at_line_start = not text[line_start:m.start(1)].strip()
        before = text[:line_start].rstrip()
        alone = text[:line_start].endswith("\n\n") and self.strong_first(text[m.start(1):m.end(1)].strip())
        if at_line_start and not (before.endswith((",", "!")) or before[-1:] > "\u2000" or alone
                                  or _SENT_FROM.match(before, before.rfind("\n") + 1)):
            return  # a bare last line counts only after "Thanks again for everything," (or "!", an emoji, a phone,
            # or a blank line when it is one common first name: "...covering Friday.\n\nMarguerite")
        pos = m.start(1)
        title = _TITLE.match(text, pos)
        if title:
            pos = title.end()
        run = _run(text, pos)
        if run is None and not title and text[:m.start(1)].rstrip(" \t")[-1:] in ("—", "–", "-", "~"):
            yield from self._lower_name(pos)  # "see ya 🤙 —dani"
            return
        if run and not at_line_start and not title and run[2][0] not in self.names.first:
            return  # "..., Politecnico di Milano": after a comma or dash, a sign-off starts with a first name
        if (run and run[1] <= m.end(1) and not text[run[1]:m.end(1)].strip() and len(run[2]) <= 3
                and self.accept("signoff", run, True, title is not None,
                                title is not None and title.group().rstrip(". \t") in _SOFT)):
            yield run[0], run[1], " ".join(run[2])
    def _context(self, kind: str, pos: int) -> Iterator[tuple[int, int, str]]:
        text = self.text
        title = _TITLE.match(text, pos) if kind in ("greet", "signoff", "title") else None
        if title:
            pos = title.end()
        if kind == "title":  # one name per title: "Dr. Miriam Kovacs, Head of Data" is not a list of names
            if text[pos:pos + 4].split(" ", 1)[0] in _ARTICLES:
                return  # "Herr der Ringe", "Mr. the Third": an article, so a title of a work
            run = _run(text, pos)
            runs, end = ([run], run[1]) if run else ([], pos)
        else:
            runs, end = _group(text, pos)
        if not runs:
            if kind == "signoff":
                yield from self._lower_name(pos)  # "-- lwazi"
            return
        closed = _closed(text, end)
        if kind == "signoff" and not closed or kind == "thanks" and not (closed or text.startswith(" for ", end)):
            return
        soft = title is not None and title.group().rstrip(". \t") in _SOFT
        accepted = [r for r in runs if self.accept(kind, r, closed, title is not None, soft)
                    and not self._place_next(r[1]) and not _PLACE_NOUNS.intersection(r[2][1:])]
        if kind == "with" and len(accepted) < len(runs):
            return  # "with Priya and London": a group is all names or none
        for s, e, words in accepted:
            yield s, e, " ".join(words)

    def _people_list(self, pos: int) -> Iterator[tuple[int, int, str]]:
        """Every name of a list of people: two or more capitalised items (and maybe "me" or "I") joined by commas,
        "and", "&", "+" or "/", when one item is a common first name here and none is a prose word, a common
        word or a stop word ("Docker and Podman", "Sage and Rosemary", "Paris and Lisbon" stay)."""
        text, items, joined, joined_by_ja_or_i = self.text, [], False, False
        while len(items) < 12:
            run = _run(text, pos)
            if run is not None and len(run[2]) == 1 and run[2][0].lower() in _SELF_WORDS:
                run = None  # "Ik en Jelle", "Eu e o Caio": the writer, not a name
            if run is None:
                me = _SELF_ITEM.match(text, pos)
                if me is None:
                    break
                end = me.end()
            else:
                items.append(run)
                end = run[1]
            sep = _LIST_SEP.match(text, end)
            if sep is None:
                break
            joined = joined or sep.group().strip(" \t,") != ""
            joined_by_ja_or_i = joined_by_ja_or_i or sep.group().strip(" \t,") in ("ja", "i")
            pos = sep.end()
        genitive = joined_by_ja_or_i
        if len(items) < 2 or not any(self.strong_first(r[2][0]) or self.inflected_first(r[2][0], genitive)
                                     or _syllable_name(r[2][0], joined=True) and r[2][0] not in self.names.words
                                     for r in items):
            return
        if not joined and not all(r[2][0] in self.names.first or self.inflected_first(r[2][0], genitive)
                                  for r in items):
            return  # commas alone: "Noor Aksoy, Brightline, Rotterdam" is a name, a company and a city
        after = _TOKEN.match(text, items[-1][1] + 1) if text[items[-1][1]:items[-1][1] + 1] == " " else None
        inflected = any(self.inflected_first(r[2][0], genitive) for r in items)  # "z Agatą i Kubą na koncercie"
        if after is not None and after.group().islower() and after.group() not in _AFTER_LIST and not inflected:
            return  # "Jasmine and Basmati rice"
        for _, _, words in items:
            first = words[0]
            if (_ordinary(first) or first.isupper() or self.lower_elsewhere(first)
                    or not first.replace("-", "").isalpha()):
                return
        for s, e, words in items:
            if not any(w in self.owner_parts for w in words):
                yield s, e, " ".join(words)

    def _with_self(self) -> Iterator[tuple[int, int, str]]:
        """Names joined to the writer in a list, in any case: "me and andrzej", "me, rose and bill", "w/ lisa &
        jakub", "Saskia & I": each a common first name of the name sets that is no common or prose word."""
        text = self.text
        for stem in _SELF_JOINS:
            for i in self.find_all(stem):
                if i and (text[i - 1].isalnum() or text[i - 1] in "_-"):
                    continue  # "theme and", "some/ path"
                pos, comma = i + len(stem), stem.endswith(b", ")
                if (article := _SELF_ARTICLE.match(text, pos)) is not None:
                    pos = article.end()  # "eu e o Caio", "yo y la Marta"
                while (m := _TOKEN.match(text, pos)) is not None and self._listed_name(m.group()):
                    sep = _LIST_SEP.match(text, m.end())
                    if comma and (sep is None or not sep.group().strip(" \t,")):
                        break  # "call me, maria": a list needs its "and" ("me, rose and bill")
                    yield m.start(), m.end(), m.group()
                    if sep is None:
                        break
                    pos, comma = sep.end(), False
        for stem in _JOINS_SELF:
            for i in self.find_all(stem):
                start = text.rfind(" ", 0, i) + 1 if i else 0
                word = text[start:i]
                if start and text[start - 1] not in " \n\t(" or not self._listed_name(word):
                    continue
                yield start, i, word

    def _post_titles(self) -> Iterator[tuple[int, int, str]]:
        """A name before a title that follows it: "Emre Bey", "Ayşe Hanım", "Kemal Hoca", "Kovács úr", "Tanaka-san",
        "Sato-sensei's slides": a capitalised word that is no stop, prose or common word."""
        text = self.text
        for stem in _POST_TITLE_STEMS:
            for i in self.find_all(stem):
                j = i + len(stem)
                if j < len(text) and (text[j].isalnum() or stem[0] == 32 and not text[i + 1].isupper()
                                      and stem not in (b" \xfar", b" asszony")):
                    continue  # "Beyond", "bey": the title is its own capitalised word (úr and asszony are lower-case)
                start = i
                while start and (text[start - 1].isalpha() or text[start - 1] in "'’-"):
                    start -= 1
                word = text[start:i]
                if len(word) >= 2 and word[0].isupper() and not _ordinary(word) and word not in self.owner_parts:
                    yield start, i, word

    def _chat_speakers(self) -> Iterator[tuple[int, int, str]]:
        """The speakers of a chat log pasted as text: WhatsApp's "[21/11/2025, 19:42] Name:" and "12/03/24, 08:15 -
        Name:", Telegram's "Name, [07.05.2025 22:10]", IRC's "[14:02] <nick>" (without a time only when two or
        more lines read so, and the nick is no HTML tag)."""
        text = self.text
        if not (b"]" in self.view or b"> " in self.view or b" - " in self.view
                or any(self.find_all(w) for w in _EVENT_WORDS)):
            return
        irc = []
        for m in _CHAT_LINE.finditer(text):
            group = m.lastgroup or ""
            if group == "irc_bare":
                nick = m.group(group)
                if nick.split()[0] in self.names.first and (" " in nick or self.strong_first(nick)):
                    # "<Rasmus Kjeldsen> lol", "<Rustam> anyone know": a person's name in the brackets
                    yield from self._speaker(m.start(group), nick)
                elif nick.lower() not in _HTML_TAGS:
                    irc.append(m)
                continue
            if group in ("event", "timed") and not self._named(m.group(group).split()[0]):
                continue  # "The Board joined the meeting", "[14:20] Slackbot: Reminder"
            yield from self._speaker(m.start(group), m.group(group))
        if len(irc) >= 2:
            for m in irc:
                yield from self._speaker(m.start("irc_bare"), m.group("irc_bare"))

    def _owners(self) -> Iterator[tuple[int, int, str]]:
        """A known first name owning a person's things: "Harriet's birthday", "Niamh's place", "Haruto's dad"."""
        text = self.text
        for stem in (b"'s ", b"\xb4s "):  # "’" is outside Latin-1: '?' in the view, so "'s" and "´s" only
            for i in self.find_all(stem):
                nxt = _TOKEN.match(text, i + 3)
                if nxt is None or nxt.group() not in _OWNED:
                    continue
                start = i
                while start and (text[start - 1].isalpha() or text[start - 1] == "-"):
                    start -= 1
                word = text[start:i]
                if (len(word) > 2 and word[0].isupper() and (self._named(word) or _syllable_name(word))
                        and word not in _GEO and word not in self.names.words and word not in self.owner_parts):
                    yield start, i, word

    def _family_ok(self, stem: str) -> bool:
        """A surname a family can be called by ("the Harcourts"): no ordinary word, place, owner's name or word."""
        return (not _ordinary(stem) and stem not in _GEO and stem not in self.owner_parts
                and stem not in self.names.words and len(stem) > 2)

    def _named(self, word: str) -> bool:
        """A known first name that is no stop, prose or common word."""
        return word in self.names.first and not _ordinary(word)

    def _speaker(self, start: int, name: str) -> Iterator[tuple[int, int, str]]:
        name = name.strip()
        words = name.lower().replace("_", " ").replace(".", " ").split()
        if (not name or name.lower().lstrip("@") in self.owner_handles or any(w in self.owner_lower for w in words)
                or not any(c.isalpha() for c in name) or name.startswith("+")):
            return  # the owner, or a phone number (the phone finder takes it)
        yield start, start + len(name), name

    def _lower_after_verb(self) -> Iterator[tuple[int, int, str]]:
        """A first name in lower case after a verb done to a person ("saw hamid at the station", "ask lena",
        "i think marek fixed it": then a verb must follow), when it is no English word ("rose", "bill")."""
        text = self.text
        for stem in _PERSON_VERBS:
            for i in self.find_all(stem):
                if i and (text[i - 1].isalnum() or text[i - 1] in "_-'’"):
                    continue  # "jigsaw ", "don't tell "
                m = _TOKEN.match(text, i + len(stem))
                if m is None or not m.group().islower() or m.group() in _CHAT_WORDS:
                    continue
                word = _without_possessive(m.group())
                end = m.start() + len(word)
                if text[end:end + 1] not in _WORD_END and text[end:end + 2] not in ("'s", "’s") or not (
                        self._listed_name(word) and word.capitalize() not in self.names.words):
                    continue
                if stem in _OPINION_VERBS:  # "i think marek fixed the cron job", but not "i think plus ..."
                    nxt = _TOKEN.match(text, end + 1)
                    verb = nxt.group() if nxt and text[end:end + 1] == " " else ""
                    if (verb not in _VERBS or verb in _JOINING) and not (len(verb) > 4 and verb.endswith("ed")):
                        continue
                yield m.start(), end, word

    def _listed_name(self, word: str) -> bool:
        """A common first name (``_common_first_name``) in any case ("andrzej", "Saskia"), not the owner's."""
        name = word.capitalize() if word.islower() else word
        return word.isalpha() and _common_first_name(self.names, name) and name not in self.owner_parts

    def _lower_name(self, pos: int) -> Iterator[tuple[int, int, str]]:
        """A common first name written in lower case after a greeting or a sign-off dash ("hi priya —",
        "-- lwazi"), when a comma, dash, colon, "!" or the line's end follows it."""
        m = _TOKEN.match(self.text, pos)
        if m is None or not m.group().islower():
            return
        rest = self.text[m.end():m.end() + 3].lstrip(" \t")
        if _common_first_name(self.names, m.group().capitalize()) and (not rest or rest[0] in ",:!\n—–-"
                                                                       or rest[0] > "\u2000"):  # "heyy kuba 👋"
            yield m.start(), m.end(), m.group()

    def _mention(self, pos: int) -> Iterator[tuple[int, int, str]]:
        text = self.text
        m = _HANDLE.match(text, pos)
        if not m:
            return
        handle = m.group()
        after = text[m.end():m.end() + 1]
        at_line_start = pos == 1 or text[pos - 2] == "\n"
        decorator = at_line_start and after in ("\n", "")  # "@dataclass" alone on a line
        module = handle.split(".", 1)[0].lower()  # "@functools.cache", "@pytest.mark.slow"
        if (module in _AT_WORDS or handle.lower() in self.owner_handles or decorator or handle.isdigit()
                or _GROUP_HANDLE.search(handle) or handle.lower() in self.owner_lower
                or len(handle) > 2 and handle.isupper() or _DOMAIN.search(handle)):
            return  # not a person: "@here", an owner's name, "@NASA", "ending in @uni.example"
        if after and after in "(/":  # "@app.route(...)", "@types/node"
            return
        end = m.end()
        if handle[0].isupper() and handle.replace("-", "").isalpha():  # a display name: "@Priyanka Rao", "@Jean-Luc X"
            for _ in range(2):
                nxt = _TOKEN.match(text, end + 1) if text[end:end + 1] == " " else None
                word = nxt.group().removesuffix("'s").removesuffix("’s") if nxt else ""
                if not word or not word[0].isupper() or _ordinary(word):
                    break
                end = nxt.start() + len(word)
        yield pos - 1, end, text[pos:end]

    def _role(self, pos: int) -> Iterator[tuple[int, int, str]]:
        """The name after a role label: a titled name, or two or more words the name sets confirm."""
        title = _TITLE.match(self.text, pos)
        run = _run(self.text, title.end() if title else pos)
        if run and (title or len(run[2]) > 1) and self.accept("refs", run, True, title is not None):
            yield run[0], run[1], " ".join(run[2])

    def _references(self, pos: int) -> Iterator[tuple[int, int, str]]:
        """The leading name of each line of a references section (up to the next heading or blank pair)."""
        text = self.text
        end = len(text)
        for stop in ("\n\n\n", "\n#", "\n\n#"):
            k = text.find(stop, pos)
            if k >= 0:
                end = min(end, k)
        end = min(end, pos + 2000)
        line_start = pos
        while line_start < end:
            line_end = text.find("\n", line_start, end)
            line_end = end if line_end < 0 else line_end
            # Each part of the line may name a referee: "Dr. A (supervisor); B C (manager)", "A B, Director".
            starts = [_REF_LINE.match(text, line_start).end()]
            starts += [m.end() for m in _REF_SPLIT.finditer(text, line_start, line_end)]
            for k, p in enumerate(starts):
                title = _TITLE.match(text, p)
                if title:
                    p = title.end()
                run = _run(text, p)
                if run and k and not title and run[2][0] not in self.names.first:
                    continue  # "Prof. X, Politecnico di Milano": after the first part, a first name or a title
                if (run and (title or len(run[2]) > 1) and "et al" not in text[run[1]:run[1] + 8]
                        and (run[1] == line_end or text[run[1]:line_end].lstrip(" \t")[:1] in tuple(",(–—-:|/<;"))
                        and self.accept("refs", run, True, title is not None)):
                    yield run[0], run[1], " ".join(run[2])
            line_start = line_end + 1


def _fenced(text: str) -> list[tuple[int, int]]:
    """Character ranges of fenced code blocks (``` or ~~~), an unclosed fence running to the end."""
    marks = [m.start() for m in _FENCE.finditer(text)]
    marks.append(len(text))
    return [(marks[i], marks[i + 1]) for i in range(0, len(marks) - 1, 2)]


# A list item right before or after a name found: "Selin ve <Onur>", "a Bia e o <Caio>", "with <Hamza> and Dong-hyun".
_ARTICLE = r"(?:(?:o|a|el|la|le|de|der|die)[ \t]+)?"
_JOIN = r"(?:[ \t]*[&+][ \t]*|[ \t]+(?:and|und|et|e|en|i|y|og|och|ve)[ \t]+)"  # no comma: "Hi Claire, merci"
_NEIGHBOUR_BEFORE = re.compile(rf"(?:^|(?<=[\s(]))(?P<w>[^\W\d_]+(?:-[^\W\d_]+)?){_JOIN}{_ARTICLE}\Z")
_NEIGHBOUR_AFTER = re.compile(rf"{_JOIN}{_ARTICLE}(?P<w>[^\W\d_]+(?:-[^\W\d_]+)?)(?![\w'’@-])"
                              rf"|[ \t]+\((?P<nick>[^\W\d_]+)\)")  # a nickname: "Chukwuemeka Nwosu (Emeka)"


def _list_neighbours(text: str, found: list[tuple[int, int, str]], names: NameSets,
                     owner_parts: frozenset[str]) -> list[tuple[int, int, str]]:
    """Names listed with a name already found (one step each way, joined by "and", "&", "ve", "i", ...): a
    capitalised known first name that is no common, stop or prose word."""
    spans = {(s, e) for s, e, _ in found}
    out = []
    for s, e, _ in found:
        for m in (_NEIGHBOUR_BEFORE.search(text, max(0, s - 40), s), _NEIGHBOUR_AFTER.match(text, e)):
            group = "nick" if m is not None and m.groupdict().get("nick") else "w"
            if m is None or m.span(group) in spans:
                continue
            word = m.group(group)
            first = word.split("-")[0]
            if (len(first) >= 2 and first[0].isupper() and first in names.first and not _ordinary(first)
                    and first not in owner_parts and not word.isupper() and first.lower() not in _SELF_WORDS):
                spans.add(m.span(group))
                out.append((*m.span(group), word))
    return out


# Pairs that name a brand, a firm, a work or a duo rather than two people one knows ("Ben & Jerry's", "Romeo and
# Juliet", "Marks & Spencer"), and "X & X" ("Johnson & Johnson") or "X & Sons".
_FAMOUS_PAIR_WORDS = """ben+jerry marks+spencer johnson+johnson procter+gamble romeo+juliet antony+cleopatra tom+jerry
hansel+gretel jack+jill adam+eve bonnie+clyde lewis+clark simon+garfunkel sonny+cher bert+ernie rick+morty mario+luigi
batman+robin sherlock+watson holmes+watson thelma+louise wallace+gromit calvin+hobbes laurel+hardy abbott+costello
penn+teller barnes+noble dolce+gabbana abercrombie+fitch crate+barrel ernst+young simon+schuster harry+david
bang+olufsen williams+sonoma smith+wesson black+decker hall+oates tristan+isolde samson+delilah troilus+cressida
dido+aeneas orpheus+eurydice rosencrantz+guildenstern gilbert+sullivan lennon+mccartney starsky+hutch mork+mindy
cagney+lacey morecambe+wise ant+dec key+peele phineas+ferb rocky+bullwinkle pinky+brain ren+stimpy chip+dale
lilo+stitch timon+pumbaa frog+toad max+moritz asterix+obelix tintin+milou pettson+findus tristan+iseult
pelléas+mélisande hero+leander daphnis+chloe paolo+francesca lancelot+guinevere beauty+beast jules+jim
freddie+jason bill+ted harold+kumar jay+bob cheech+chong penn+teller siegfried+roy hewlett+packard
johnson+wales fortnum+mason lea+perrins arm+hammer moët+chandon tate+lyle rolls+royce""".split()  # noqa: SIM905
_FAMOUS_PAIRS = frozenset(tuple(p.split("+")) for p in _FAMOUS_PAIR_WORDS)
_PAIR_JOIN = r"[ \t]*(?:&|\+|and|n|'n'|und|et|y|e|og|och)[ \t]*"
_PAIR_AFTER = re.compile(_PAIR_JOIN + r"([^\W\d_]+)")
_PAIR_BEFORE = re.compile(r"([^\W\d_]+)" + _PAIR_JOIN + r"\Z")
_FIRM_TAIL = frozenset("sons son co company partners associates brothers bros daughters".split())  # noqa: SIM905


# Characters, brands and shops everyone knows by a person's name: never somebody the owner knows.
_WELL_KNOWN_NAMES = """sherlock holmes|harry potter|hermione granger|ron weasley|frodo baggins|bilbo baggins
|darth vader|luke skywalker|han solo|james bond|mickey mouse|minnie mouse|donald duck|peter pan|winnie the pooh
|paddington bear|homer simpson|bart simpson|marge simpson|lisa simpson|mrs dalloway|jane eyre|anna karenina
|tom sawyer|huckleberry finn|oliver twist|don quixote|john lewis|mr men|mr. men|the simpsons|the kardashians
|pac-man|ms. pac-man|douwe egberts|ronald mcdonald|tim hortons|betty crocker|colonel sanders|mr muscle|mr clean
|dr pepper|dr. pepper|mr bean|mr. bean|father christmas|santa claus|jack frost|tinker bell|alice in wonderland
|bob the builder|thomas the tank|dora the explorer|indiana jones|forrest gump|hannibal lecter|jack sparrow
|lara croft|mario kart|super mario|sonic the|princess peach|ada lovelace|alan turing|marie curie|albert einstein
|isaac newton|charles darwin|william shakespeare|jane austen|leonardo da vinci|vincent van gogh|taylor swift
|elon musk|bill gates|steve jobs|mark zuckerberg|jeff bezos|barack obama|donald trump|joe biden|emmanuel macron
|angela merkel|king charles|queen elizabeth|prince harry|tom hanks|billie eilish|ed sheeran|beyoncé|rihanna
|calvin klein|ralph lauren|tommy hilfiger|hugo boss|louis vuitton|yves saint laurent|christian dior|coco chanel
|giorgio armani|kate spade|michael kors|tory burch|vera wang|ted baker|paul smith|stella mccartney|marc jacobs
|jimmy choo|estée lauder|walt disney|ronald reagan|john deere|ben sherman|fred perry|tim horton
|kanye west|lionel messi|cristiano ronaldo|serena williams|roger federer"""
_WELL_KNOWN = frozenset(n.strip() for n in _WELL_KNOWN_NAMES.replace("\n", "").split("|"))
_WORD_BEFORE = re.compile(r"([^\W\d_][\w.'’-]*)[ \t]+\Z")
_WORD_AFTER = re.compile(r"(?:'s|’s)?[ \t]+([^\W\d_][\w'’-]*)")


def _well_known(text: str, start: int, end: int) -> bool:
    """True when the name at [start, end), alone or with the word before or after it, is a well-known character,
    brand or public figure ("Sherlock Holmes", "Uncle Ben's rice", "Hey Jude")."""
    name = text[start:end].lower()
    if name in _WELL_KNOWN:
        return True
    before = _WORD_BEFORE.search(text, max(0, start - 30), start)
    after = _WORD_AFTER.match(text, end)
    return (before is not None and f"{before.group(1).lower()} {name}" in _WELL_KNOWN
            or after is not None and f"{name} {after.group(1).lower()}" in _WELL_KNOWN)


def _without_famous_pairs(text: str, found: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """``found`` less the names that are one side of a famous pair, "X & X" or "X & Sons"."""
    drop: set[int] = set()
    for s, e, name in found:
        word = name.split(" ")[-1].lower()
        after = _PAIR_AFTER.match(text, e)
        before = _PAIR_BEFORE.search(text, max(0, s - 30), s)
        pairs = ([(word, after.group(1).lower())] if after else []) + (
            [(before.group(1).lower(), name.split(" ")[0].lower())] if before else [])
        if any(a == b or b in _FIRM_TAIL or (a, b) in _FAMOUS_PAIRS for a, b in pairs):
            drop.add(s)
    return [f for f in found if f[0] not in drop] if drop else found


def context_name_spans(view: _View, owner: Owner, names: NameSets) -> Iterator[_Span]:
    """``<NAME>`` spans for other people named in context in ``view.text``, and every other occurrence of
    those names in it (the owner's names and handles are never returned)."""
    text = view.text
    owner_parts = frozenset(p for n in owner.names for p in _TOKEN.findall(n))
    owner_handles = frozenset(h.lower().lstrip("@") for h in owner.handles)
    found = list(_Finder(view, names, owner_parts, owner_handles).spans())
    if not found:
        return
    found += _list_neighbours(text, found, names, owner_parts)
    found = _without_famous_pairs(text, found)
    found = [f for f in found if not _well_known(text, f[0], f[1])]
    fences = _fenced(text) if "```" in text or "~~~" in text else []
    people = []
    for s, e, name in found:
        if any(a <= s < b for a, b in fences):
            continue
        yield _Span(s, e, "NAME")
        if not text.startswith("@", s):
            people.append(name)
    if people:
        for span in _name_spans(text, _people_index(tuple(sorted(set(people))), owner)):
            # "Tomasz" found in a greeting, "Tomasz Wierzba" further on: the surname goes with it.
            nxt = _TOKEN.match(text, span.end + 1) if text.startswith(" ", span.end) else None
            if nxt and nxt.group() in names.last and nxt.group() not in _STOP and nxt.group() not in owner_parts:
                span = _Span(span.start, nxt.end(), "NAME")
            yield span
