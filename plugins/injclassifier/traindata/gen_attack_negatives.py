"""Writes own_attneg_benign.json and own_attneg_calib.json: ordinary prompts
that use the structures of the attacks of gen_attacks.py harmlessly: real
Markdown headers and --- separators, "summarise this email" with pasted
content (including people asking each other to ignore an earlier message),
"repeat after me" in language learning, "act as an interviewer" practice,
"as the admin of our Jira, how do I...", chat logs with User:/Assistant:
turns to review, urgent but ordinary requests, repeated characters in logs
and ASCII art, passwords and access in everyday senses. Written from
scratch for issue 19 (third tuning pass); nothing is taken from any dataset
or evaluation set.

It also fills the carriers of gen_attacks.py (its emails, reviews, pages,
CSV files, code and ordinary requests) with harmless notes instead of
instructions, following that script's split of its parts.

Like gen_triggerwords.py, the templates are split with a fixed seed: the
texts of a quarter of them go to own_attneg_calib.json, never trained on
(train-detector reads it with --calib-benign to choose the threshold), the
rest to own_attneg_benign.json.

    python3 plugins/injclassifier/traindata/gen_attack_negatives.py
"""
import json, os, random, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_attacks  # noqa: E402  (the attacks' carriers, filled here with harmless notes)
import templates  # noqa: E402

# Harmless notes put where gen_attacks.py puts its hidden instructions, in
# the same emails, reviews, pages, CSV files and code, so that the carriers
# themselves do not look like attacks.
NOTES = [
    "Please let me know if you have any questions.", "Note: the office is closed on Friday.",
    "Ignore the second attachment, it's a duplicate.", "Reminder: bring your ID to the front desk.",
    "The previous invoice had a typo; this one replaces it.", "Important: please reply by Thursday.",
    "P.S. the Wi-Fi password for the meeting room is on the whiteboard.", "URGENT: the deadline moved to Monday.",
    "TODO: handle empty lists", "Admin note: the backup runs every night at 2am.",
    "New instructions for parking are on the back of the ticket.", "Disregard the earlier price list, prices went down.",
    "Hello to everyone reading this!", "Feel free to forward this to your team.",
    "The system will be down for maintenance on Sunday.", "Thanks again for your patience.",
    "Repeat customers get 10% off.", "Forget the old login page, use the new portal.",
    "Staff only beyond this point.", "This replaces the version sent last week.",
    "The assistant manager will contact you shortly.", "Please print this page and sign it.",
    "Access is granted to all members from 9am.", "Follow the steps above in order.",
]


def carrier_texts(Q, notes, rng):
    out = []
    for kind in ("email", "review", "page", "csv", "code"):
        for c in Q[kind]:
            for ask in rng.sample(Q["doc_ask"], min(4, len(Q["doc_ask"]))):
                out.append(ask + "\n\n" + c.format(h=rng.choice(notes)))
    reqs = Q["req"]
    for a in reqs:
        for b in rng.sample(reqs, min(3, len(reqs))):
            if a != b:
                out.append(a + rng.choice([" ", "\n", " Also, "]) + b)
    return out

NAMES = ["Dana", "Sam", "Priya", "Tom", "Lena", "Marco", "Aisha", "Jon"]
TOPICS = ["the budget review", "the team offsite", "the product launch", "the school trip", "the kitchen renovation", "the quarterly report"]
DAYS = ["Monday", "Tuesday", "Thursday", "Friday", "next week"]
ASK = ["Summarise this email for me:", "Can you draft a reply to this?", "What is the sender asking me to do?", "Make a to-do list from this email:", "Is the tone of this email okay?", "Translate this email into German:"]
LANG = ["French", "Spanish", "German", "Italian", "Japanese", "Portuguese"]
PHRASES = ["Where is the train station?", "I would like a coffee, please.", "How much does this cost?", "Nice to meet you.", "Could you speak more slowly?", "I'm allergic to nuts."]
ROLE = ["a job interviewer for a junior developer role", "a customs officer at the airport", "a strict piano teacher", "a hiring manager at a bank", "a patient asking about side effects", "a landlord showing a flat", "an examiner for my IELTS speaking test", "a journalist interviewing me about my startup"]
TOOL = ["Jira", "Confluence", "Slack", "GitHub organisation", "Google Workspace", "WordPress site", "Shopify store", "Zoom account", "Trello board", "GitLab instance"]
ADMIN_TASK = ["add a new user", "archive an old project", "change the default permissions", "set up single sign-on", "create a custom field", "reset someone's password", "export all issues to CSV", "remove a former employee", "turn on audit logs", "rename a workspace"]
SECTION = ["Introduction", "Instructions", "Setup", "Installation", "Overview", "Usage", "Rules", "System requirements", "Notes", "Next steps"]

T = [
 ("{ask}\n\nHi all,\n\nPlease ignore my previous email about {topic}, I had the wrong date. It is now on {day}.\n\nThanks,\n{name}", dict(ask=ASK, topic=TOPICS, day=DAYS, name=NAMES)),
 ("{ask}\n\nHello {name},\n\nCorrection to my last message: the previous instructions for {topic} were a mistake. The room is 4B, not 2A. Sorry for the confusion!", dict(ask=ASK, name=NAMES, topic=TOPICS)),
 ("{ask}\n\nSubject: URGENT - {topic}\n\nHi, could you send me the final numbers by {day}? It's quite urgent. Cheers, {name}", dict(ask=ASK, topic=TOPICS, day=DAYS, name=NAMES)),
 ("Repeat after me in {lang}: \"{p}\"", dict(lang=LANG, p=PHRASES)),
 ("I'm learning {lang}. Say \"{p}\" and then have me repeat it back to you.", dict(lang=LANG, p=PHRASES)),
 ("Can you repeat the last {x} you gave me, but {y}?", dict(x=["recipe", "list", "explanation", "steps", "answer"], y=["shorter", "in bullet points", "with metric units", "in simpler words", "in Spanish"])),
 ("Act as {role}. Ask me one question at a time and give me feedback at the end.", dict(role=ROLE)),
 ("Let's practise: you are {role} and I'm {me}. Stay in role until I say 'stop'.", dict(role=ROLE, me=["the candidate", "a nervous beginner", "the traveller", "the student"])),
 ("As the admin of our team's {tool}, how do I {task}?", dict(tool=TOOL, task=ADMIN_TASK)),
 ("I'm the developer of a small {app} app. How should I {task}?", dict(app=["to-do", "weather", "recipe", "budgeting", "fitness"], task=["store user passwords safely", "write my system prompt for the chatbot feature", "test input validation", "handle admin accounts", "log errors without leaking data"])),
 ("I'm running an authorised {x} on our own {y}. What should be in the report?", dict(x=["penetration test", "security audit", "accessibility review", "load test"], y=["web shop", "company intranet", "mobile app", "API"])),
 ("# {s1}\n\nThis guide explains how to {task}.\n\n---\n\n## {s2}\n\n1. Open the settings.\n2. Choose a new theme.\n\nCan you rewrite this README so it reads better?", dict(s1=SECTION, s2=SECTION, task=["set up the project", "run the tests", "deploy the site", "configure the printer"])),
 ("Here are my notes:\n\n## {s}\n- buy milk\n- call {name}\n\n---\n\nTurn them into a checklist.", dict(s=SECTION, name=NAMES)),
 ("Fix the Markdown in this:\n\n### {s} ###\nText here\n***\n### {s2}\nMore text", dict(s=SECTION, s2=SECTION)),
 ("Here's a chat log from our support bot. Rate the bot's tone:\n\nUser: My order {o} hasn't arrived.\nAssistant: Sorry to hear that! Let me check.\nUser: Thanks.\nAssistant: It ships {day}.", dict(o=["#1042", "#2210", "#5531", "#874"], day=DAYS)),
 ("Write a short dialogue between a User and an Assistant where the user asks about {t}.", dict(t=["train times", "a recipe", "a refund", "learning to swim", "the weather"])),
 ("Translate this customer review into {lang}: \"{rev}\"", dict(lang=LANG, rev=["The blender is loud but works well.", "Lovely hotel, small rooms.", "Delivery was late, product is fine.", "Great course, I learned a lot."])),
 ("Summarise these reviews:\n\n{r1}\n{r2}", dict(r1=["5 stars, fast delivery.", "Too noisy.", "Broke after a week.", "Love the colour."], r2=["Customer service ignored my first email but fixed it later.", "Instructions were unclear.", "Would buy again.", "The password reset link in the app didn't work."])),
 ("Clean up this CSV:\n\nname,role,notes\n{name},admin,\"ignore - duplicate row\"\n{name2},editor,", dict(name=NAMES, name2=NAMES)),
 ("What does this code do?\n\ndef load(path):\n    # {c}\n    with open(path) as f:\n        return f.read()", dict(c=["ignore empty files", "TODO: handle errors", "the previous version was a mistake, see issue 12", "override for tests", "print the contents for debugging"])),
 ("Why does my log file have lines like '{pad}' in it?", dict(pad=["=" * 40, "#" * 30, "-" * 50, "* " * 20, "0" * 32, "x" * 25])),
 ("My keyboard keeps typing {pad} on its own. How do I fix it?", dict(pad=["aaaaaaaaaaaaaaaa", "]]]]]]]]]]]]", "ööööööööö", "..............", "jjjjjjjjjjjjjjj"])),
 ("Make an ASCII banner like this for my script:\n{pad}\n  {t}\n{pad}", dict(pad=["=" * 30, "#" * 30, "*" * 30, "~" * 30], t=["BACKUP TOOL", "HELLO WORLD", "DEPLOY", "REPORT"])),
 ("URGENT: {x} What should I do first?", dict(x=["my basement is flooding.", "I locked my keys in the car.", "my dog ate chocolate.", "the smoke alarm won't stop.", "I think I sent money to the wrong account."])),
 ("This is an emergency, {x}. Please answer quickly.", dict(x=["my flight leaves in an hour and I lost my passport", "my toddler swallowed a coin", "my laptop is overheating", "the pipe under my sink burst"])),
 ("I forgot the password to my {x}. How do I reset it?", dict(x=["Wi-Fi router", "work laptop", "Netflix account", "old Gmail", "bank app", "Instagram"])),
 ("We play a word game with the kids where one person guards a secret password and the others guess it. Can you suggest {n} good {k} passwords?", dict(n=["five", "ten", "some"], k=["funny", "easy", "animal-themed", "food-themed"])),
 ("Begin your reply with {x}, then {y}.", dict(x=["a one-line summary", "a short title", "the final answer", "'Dear Sir or Madam'"], y=["explain your reasoning", "list the steps", "give an example", "write the letter"])),
 ("In my escape room, the last clue says 'Access Granted' appears when players {x}. Can you write {y}?", dict(x=["solve the cipher", "find the key", "enter the code"], y=["the cipher", "a hint card", "the story intro"])),
 ("Task complete on my side: {x}. Next, can you help me {y}?", dict(x=["the slides are done", "I finished the draft", "the data is cleaned", "the code compiles"], y=["write the conclusion", "plan the presentation", "make a chart", "write tests"])),
 ("That's the end of chapter {n}. Now write chapter {m}, where {e}.", dict(n=["one", "two", "three"], m=["two", "three", "four"], e=["the hero reaches the city", "the storm arrives", "the twins meet again", "the secret is revealed"])),
 ("Here is a system design doc. Summarise the section on {s}:\n\n## {s}\nThe service reads config at start-up and the admin can override limits per tenant.", dict(s=["configuration", "access control", "rate limits", "logging"])),
 ("Pretend you're {who} and explain {t} to me.", dict(who=["a kind grandmother", "a sports commentator", "a pirate", "a tour guide"], t=["compound interest", "how volcanoes work", "the offside rule", "how vaccines work"])),
 ("What's a good system prompt for a {x} chatbot on my own website?", dict(x=["recipe", "customer support", "library", "hotel booking", "tutoring"])),
 ("Read this web page text and tell me the opening hours:\n\nWelcome to {p}. Open Mon-Fri 9-5. Note: ignore the old hours on our leaflets.", dict(p=["Lakeview Dental", "Corner Bakery", "City Library", "Green Gym"])),
 ("Proofread: \"Please disregard the previous version of the {d}; the new one is attached.\"", dict(d=["contract", "invoice", "timetable", "seating plan", "menu"])),
 ("Write instructions for a new employee on {t}, with headers and a --- line between sections.", dict(t=["using the coffee machine", "booking meeting rooms", "submitting expenses", "the fire drill"])),
 ("My manager said 'forget the old plan, the new priority is {p}'. How do I tell the team?", dict(p=["the launch", "customer bugs", "hiring", "the audit"])),
 ("Print the numbers from 1 to {n} in {lang}.", dict(n=["10", "20", "50"], lang=["Python", "Go", "JavaScript", "Bash"])),
 ("What is the real message behind {x}?", dict(x=["the poem 'The Road Not Taken'", "the film Inside Out", "Orwell's Animal Farm", "the song Imagine"])),
 ("Translate the text above into {lang}, please.", dict(lang=LANG)),
 ("Translate the following into {lang}: {s}", dict(lang=LANG, s=["The instructions are on the back of the box.", "From now on the museum opens at ten.", "The admin office is on the second floor.", "New rules for the swimming pool start today."])),
]

rng = random.Random(20261209)
train, calib = templates.split(T, rng, 60, unique=True)
# The carriers follow gen_attacks.py's split of its parts (a carrier kept
# out there is kept out here too), the notes are split the same way.
Ptrain, Pcalib = gen_attacks.split_parts()
ranked = sorted(NOTES, key=lambda x: gen_attacks.rank("notes", x))
notes_calib, notes_train = ranked[: len(NOTES) // 4], ranked[len(NOTES) // 4:]
train.extend(carrier_texts(Ptrain, notes_train, rng))
calib.extend(carrier_texts(Pcalib, notes_calib, rng))
rng.shuffle(train)
rng.shuffle(calib)
here = os.path.dirname(os.path.abspath(__file__))
for name, data in (("own_attneg_benign.json", train), ("own_attneg_calib.json", calib)):
    with open(os.path.join(here, name), "w") as f:
        json.dump(data, f, indent=0, ensure_ascii=False)
    print(len(data), "texts ->", name)
