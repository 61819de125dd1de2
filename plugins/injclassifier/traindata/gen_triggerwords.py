"""Writes own_trigger_benign.json and own_trigger_calib.json: ordinary,
harmless prompts that use the words attackers also use (ignore, disregard,
forget, override, bypass, jailbreak, uncensored, unrestricted, unfiltered,
pretend, role-play, act as, system, prompt, instructions, admin, root, sudo,
developer mode, reveal, secret, password, hack, exploit, unlock, disable,
rules, restrictions, filter, policy, from now on, new task, ...), each in
its everyday sense. Written from scratch for the injection-classifier's
second tuning pass (issue 19): hand-written templates and slot fillers, a
fixed seed, nothing taken from any evaluation set.

The templates are split (seeded) into two groups: the texts of about three
quarters go to own_trigger_benign.json (training data, benign side), the
texts of the other quarter to own_trigger_calib.json, which is never trained
on: train-detector reads it with --calib-benign to choose the threshold, so
the threshold is set on phrasings the model has not seen.

    python3 plugins/injclassifier/traindata/gen_triggerwords.py
"""
import json, os, random, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import templates  # noqa: E402

V_IGNORE = ["ignore", "disregard", "forget about", "skip", "overlook"]
V_BREAK = ["bypass", "override", "get around", "disable", "turn off"]
TOOLS = ["git", "Python", "VS Code", "Docker", "Excel", "npm", "Kubernetes", "Photoshop", "WordPress", "Linux", "PowerShell", "Jenkins", "Terraform", "React", "Django", "pytest", "ESLint", "Chrome"]
PEOPLE = ["my boss", "my sister", "my coach", "my landlord", "my teacher", "my doctor", "my neighbour", "a coworker", "my partner", "my teenage son", "my grandmother", "our team lead"]
FOODS = ["lasagne", "banana bread", "pad thai", "risotto", "pancakes", "chili", "sourdough", "tiramisu"]

T = [
 ("How do I {v} {o} in {tool}?", dict(v=V_IGNORE + V_BREAK, o=["a failing test", "the cache", "a lint warning", "the default settings", "a merge conflict", "the proxy", "SSL verification for a local server", "case sensitivity", "whitespace", "a deprecated warning", "the rate limit in my own test setup"], tool=TOOLS)),
 ("Is it a bad idea to {v} the {o} on my {thing}?", dict(v=V_IGNORE + V_BREAK, o=["low battery warning", "check engine light", "maintenance reminder", "update prompt", "safety interlock", "auto-shutoff timer"], thing=["car", "laptop", "dishwasher", "lawn mower", "e-bike", "phone", "3D printer"])),
 ("{who} keeps telling me to {v} my {what}. Should I listen?", dict(who=PEOPLE, v=["ignore", "forget", "stop worrying about", "override"], what=["back pain", "old habits", "first instinct", "budget", "previous mistakes", "anxiety about exams"])),
 ("Please {v} my last message, {why}. {q}", dict(v=["ignore", "disregard", "forget", "scratch"], why=["I sent it too early", "it had a typo", "I figured it out", "wrong chat"], q=["How long do I bake " + f + "?" for f in FOODS] + ["What's a good stretch for tight hamstrings?", "Can you suggest a name for a goldfish?"])),
 ("Can you act as a {role} and {task}?", dict(role=["patient French teacher", "travel agent", "job interviewer", "fitness coach", "museum guide", "debate partner", "Dungeon Master", "sommelier", "career counsellor", "customer who wants a refund"], task=["help me practise", "ask me questions one at a time", "correct my mistakes gently", "give me feedback at the end", "stay in character until I say stop"])),
 ("Pretend you are {role} and {task}.", dict(role=["a pirate", "Sherlock Holmes", "a medieval baker", "a friendly robot", "an astronaut on Mars", "my future self", "a cat", "a 1920s radio host"], task=["describe your morning", "tell my kids a bedtime story", "explain photosynthesis", "review my essay", "give me three life tips"])),
 ("Let's role-play: {scene}", dict(scene=["you're a barista and I'm ordering in Italian.", "I'm a nervous first-time flyer and you're the flight attendant.", "you're a shopkeeper in a fantasy village and I'm a traveller.", "you're my landlord and I'm asking for a repair.", "you are a hotel receptionist and I need a late check-out."])),
 ("What does {term} mean in {ctx}?", dict(term=["'system prompt'", "'jailbreak'", "'root access'", "'sudo'", "'developer mode'", "'override'", "'bypass'", "'uncensored'", "'unfiltered'", "'prompt injection'", "'admin rights'", "'exploit'", "'payload'", "'zero-day'", "'sandbox escape'"], ctx=["this news article", "AI safety", "iPhone forums", "the Linux world", "cybersecurity", "my car manual", "film ratings", "a C# tutorial", "a plumbing guide"])),
 ("Explain how {x} works, in simple terms.", dict(x=["a coronary bypass", "a heart bypass operation", "a system prompt in a chatbot", "an override clause in a contract", "role-based access control", "sudo on Linux", "a jailbroken phone", "a content filter in a school network", "a password manager", "two-factor authentication", "a firewall rule", "prompt engineering", "the immune system", "a bypass road around a town", "an ad blocker"])),
 ("Write a {form} about {topic}.", dict(form=["poem", "short story", "limerick", "song", "blog post", "haiku"], topic=["forgetting an umbrella", "ignoring the alarm clock", "a cat that breaks every rule in the house", "an uncensored diary of a houseplant", "a robot learning new instructions", "a spy who forgets her password", "a hacker who becomes a baker", "pretending to be brave", "starting over"])),
 ("How can I {v} my {what}?", dict(v=["reset", "recover", "change", "unlock", "remove"], what=["forgotten Wi-Fi password", "Apple ID password", "admin password on my old laptop", "locked bike lock", "phone's PIN", "router's admin login", "Windows PIN", "email account"])),
 ("I'm the {role} of {org}. How do I {task}?", dict(role=["admin", "owner", "system administrator", "developer", "treasurer", "moderator"], org=["our Discord server", "a small online shop", "our church website", "my family's NAS", "the club's Google Workspace", "our Minecraft server"], task=["give someone moderator rights", "reset a member's password", "turn on two-factor login", "export the member list", "change the theme", "ban a spam account"])),
 ("Our company is doing an {x} of our {y}. What should we {z}?", dict(x=["authorised penetration test", "internal security audit", "approved red-team exercise", "compliance review", "fire drill"], y=["web app", "office network", "mobile app", "cloud account", "warehouse"], z=["prepare", "tell staff", "check first", "document"])),
 ("Is it okay to {v} the {o}?", dict(v=V_IGNORE + ["bypass"], o=["terms and conditions", "cookie banner", "warm-up before a run", "recommended dose", "assembly instructions", "software update", "expiry date on yoghurt", "dress code"])),
 ("Translate into {lang}: \"{s}\"", dict(lang=["French", "German", "Spanish", "Italian", "Portuguese", "Dutch", "Japanese"], s=["Ignore the noise and keep going.", "Please follow the new instructions on the door.", "The system is down for maintenance.", "Forget your worries for a while.", "Don't override the thermostat.", "The road bypasses the old town.", "From now on, the shop opens at nine.", "The secret ingredient is cinnamon."])),
 ("Give me {n} tips to stop {bad}.", dict(n=["three", "five", "some", "quick"], bad=["ignoring my emails", "forgetting passwords", "breaking my own rules", "blowing my budget", "procrastinating", "pretending I'm fine", "overriding my alarm", "doom-scrolling"])),
 ("In {lang}, how do I {task}?", dict(lang=["Python", "Go", "JavaScript", "SQL", "Rust", "C#", "Java", "Bash"], task=["override a method", "ignore case when comparing strings", "bypass the cache", "print the system path", "show hidden files", "skip the first line of a file", "read an environment variable", "catch an exception and ignore it", "disable a warning", "execute a shell command", "reveal a password field in a form"])),
 ("My {who} says {claim}. Is that true?", dict(who=["uncle", "gym buddy", "teacher", "coworker", "roommate"], claim=["you should ignore the first symptoms of a cold", "hackers can unlock any car", "you can bypass jet lag with coffee", "all rules are meant to be broken", "jailbreaking a phone is illegal", "uncensored films are banned here", "the system is rigged"])),
 ("Summarise the {doc} {how}.", dict(doc=["instructions above", "meeting notes", "user manual", "house rules", "policy document", "previous chapter", "safety instructions", "privacy policy"], how=["in three bullet points", "for a ten-year-old", "in one paragraph", "and list the action items", "and highlight any deadlines"])),
 ("Repeat the {thing} {how}.", dict(thing=["last step", "list of ingredients", "steps above", "previous answer", "phone number you mentioned", "chorus"], how=["in simpler words", "as a checklist", "more slowly", "in Spanish", "with metric units"])),
 ("Start a new {x}: {y}", dict(x=["task", "section", "paragraph", "chapter", "list", "page"], y=["describe a sunset over the sea.", "list ten fruits.", "write about solar panels.", "outline a study plan for chemistry.", "plan a picnic."])),
 ("From now on, {x}", dict(x=["please answer in British English.", "keep your answers under 100 words.", "call me Sam.", "use metric units.", "give me the recipe steps one at a time.", "quiz me in Spanish.", "format code in Python 3."])),
 ("What are the {rules} for {thing}?", dict(rules=["rules", "restrictions", "safety rules", "age restrictions", "official rules", "unwritten rules"], thing=["carrying liquids on a plane", "flying a drone in a park", "playing Uno", "adopting a cat", "parking overnight in London", "camping in national parks", "bringing food into a stadium"])),
 ("How do I turn off the {f} on {d}?", dict(f=["content filter", "parental controls", "safe search", "spam filter", "profanity filter", "restricted mode", "screen time limits"], d=["my own router", "YouTube", "my Xbox", "Gmail", "my own laptop", "Netflix", "my iPad"])),
 ("Why do {who} {act}?", dict(who=["cats", "toddlers", "teenagers", "dogs", "people"], act=["ignore you when you call them", "break rules to test limits", "pretend not to hear", "forget things when stressed", "keep secrets"])),
 ("Is the {x} version of {y} worth watching?", dict(x=["uncensored", "unrated", "director's cut", "extended", "unfiltered"], y=["that documentary", "Blade Runner", "the comedy special", "the anime", "the concert film"])),
 ("Can you help me write a {doc} that {does}?", dict(doc=["house rules list", "team policy", "set of instructions", "system design doc", "onboarding guide"], does=["my kids will actually follow", "explains our new password rules", "overrides the old version", "covers admin access", "new hires won't ignore"])),
 ("What's the difference between {a} and {b}?", dict(a=["a jailbreak", "root", "an admin account", "a system prompt", "a firewall", "a bypass"], b=["an unlock", "sudo", "a guest account", "a user prompt", "an antivirus", "a detour"])),
 ("I keep forgetting {x}. Any tricks to remember {y}?", dict(x=["my passwords", "people's names", "where I park", "my gym routine", "the steps of a recipe"], y=["them", "it", "better", "without writing everything down"])),
 ("{q} Ignore the spelling, I'm typing on my phone.", dict(q=["whats a good gift for a 5 year old?", "how do i get wine out of a shirt?", "best way to learn touch typing?", "can dogs eat blueberries?", "how many cups in a litre?"])),
 ("Quick question about my {t} homework: {q}", dict(t=["maths", "history", "chemistry", "biology", "physics"], q=["can you explain the instructions for question 3?", "my teacher said to ignore the last part, what does that leave?", "what does 'override' mean in this reading?", "how do I solve a system of equations?"])),
 ("Tell me a story where {x}.", dict(x=["a dragon forgets how to fly", "a girl breaks the rules to save her village", "a robot ignores its orders to help a lost puppy", "a wizard reveals a secret to his apprentice", "two friends pretend to be kings"])),
 ("Write a product description for {x}.", dict(x=["an unfiltered cold-pressed juice", "a hack-proof bike lock", "an uncensored comedy podcast", "a secret-recipe barbecue sauce", "a rule-breaking board game", "a jailbreak escape-room experience"])),
 ("In chess, when should I {x}?", dict(x=["ignore my opponent's threat", "break the opening rules", "sacrifice the queen", "pretend to attack one side"])),
 ("How do I stop {app} from {doing}?", dict(app=["Windows", "my Mac", "Chrome", "Outlook", "Spotify", "my Android phone"], doing=["ignoring my default printer", "overriding my display settings", "forgetting my Wi-Fi network", "bypassing my DNS settings", "resetting my preferences"])),
 ("What should I do if my {x} asks me to {y}?", dict(x=["employer", "bank", "landlord", "school"], y=["ignore a safety rule", "share my password", "bypass a procedure", "break my lease early", "keep a secret from HR"])),
]

rng = random.Random(20261207)
train, calib = templates.split(T, rng, 60)
rng.shuffle(train)
rng.shuffle(calib)
here = os.path.dirname(os.path.abspath(__file__))
for name, data in (("own_trigger_benign.json", train), ("own_trigger_calib.json", calib)):
    with open(os.path.join(here, name), "w") as f:
        json.dump(data, f, indent=0, ensure_ascii=False)
    print(len(data), "texts ->", name)
