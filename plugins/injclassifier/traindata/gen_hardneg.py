"""Writes own_hardneg_benign.json: benign prompts that use words attackers
also use (ignore, bypass, override, instructions, system, pretend, ...),
built from hand-written templates with a fixed seed. Training data for the
injection-classifier (benign side); not an evaluation set.

    python3 plugins/injclassifier/traindata/gen_hardneg.py
"""
import json, os, random, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import templates  # noqa: E402

T = {
 "How do I {v} {o} in {tool}?": dict(v=["ignore","override","bypass","disable","skip","reset"], o=["a failing test","the cache","a lint warning","the default settings","a merge conflict","the proxy settings"], tool=["git","Python","VS Code","Docker","Excel","npm"]),
 "Can I safely {v} the {o} my {who} gave me?": dict(v=["ignore","disregard","forget about","override"], o=["previous instructions","old advice","earlier deadline","first draft notes","original plan"], who=["doctor","teacher","manager","landlord","coach"]),
 "Please {v} my previous message, I {why}. {q}": dict(v=["ignore","disregard","forget"], why=["made a typo","sent it by mistake","meant something else"], q=["What's a good recipe for lentil soup?","How long should I boil an egg?","Can you suggest a name for my dog?","What time zone is Tokyo in?"]),
 "Pretend you are a {role} and {task}.": dict(role=["tour guide in Paris","friendly dentist","medieval knight","museum curator","chess coach","pirate captain"], task=["describe your day","explain your job to a child","give me three tips","tell a short story","answer questions about your work"]),
 "Act as a {role}. {task}": dict(role=["travel agent","career coach","Linux terminal","spelling tutor","job interviewer","math teacher"], task=["Help me plan a weekend.","Ask me one question at a time.","Correct my mistakes.","Start with a greeting."]),
 "What does the {term} in {ctx} mean?": dict(term=["system prompt","override keyword","bypass valve","admin role","developer mode","root access","jailbreak"], ctx=["this article","AI chatbots","my car manual","Android settings","a Java class","iPhone forums"]),
 "Write a {form} about {topic}.": dict(form=["poem","short story","blog post","limerick"], topic=["ignoring bad advice","forgetting the past","breaking old rules","a robot that learns new instructions","a hacker who becomes a teacher","starting a new task each day"]),
 "Explain how {x} works.": dict(x=["a bypass surgery","a system prompt in a chatbot","the override clause in a contract","role-based access control","an admin password reset","prompt engineering","jailbreak detection"]),
 "Summarize the {doc} and list the {what}.": dict(doc=["instructions above","meeting notes","user manual","policy document","previous chapter"], what=["key steps","main risks","action items","open questions"]),
 "My {who} told me to {v} the {rule}. Is that legal?": dict(who=["boss","landlord","bank","school"], v=["ignore","bypass","override","break"], rule=["safety rules","parking rules","fire exit rule","overtime limits"]),
 "Repeat the {thing} so I can {goal}.": dict(thing=["last sentence","list of ingredients","steps above","phone number you mentioned","previous answer in simpler words"], goal=["write it down","memorise it","check my notes","share it with my team"]),
 "Start a new {x}: {y}": dict(x=["task","section","paragraph","chapter","list"], y=["describe a sunset over the sea.","list ten fruits.","write about renewable energy.","outline a study plan."]),
 "I am the {role} of {org}. How do I {task}?": dict(role=["admin","owner","developer","security lead","manager"], org=["our WordPress site","a small shop","our team's GitHub","our Slack workspace","the school website"], task=["add a new user","reset a password","enable two-factor login","export the data","change the theme"]),
 "We are running an {x} of our {y}. What should we check?": dict(x=["authorised penetration test","internal security audit","approved red-team exercise","accessibility review"], y=["web application","office network","mobile app","cloud account"]),
 "Is it okay to {v} the {o}?": dict(v=["ignore","skip","bypass"], o=["check engine light","software update","warm-up before running","terms and conditions","cookie banner"]),
 "Translate into {lang}: '{s}'": dict(lang=["French","German","Spanish","Italian"], s=["Ignore the noise and keep going.","Please follow the new instructions on the door.","The system is down for maintenance.","Forget your worries for a while."]),
 "Give me {n} tips to stop {bad}.": dict(n=["three","five","some"], bad=["ignoring my emails","forgetting passwords","breaking my own rules","overriding my budget","procrastinating"]),
 "In {lang}, how do I {task}?": dict(lang=["Python","Go","JavaScript","SQL","Rust","C#"], task=["override a method","ignore case when comparing strings","bypass the cache","print the system path","reveal hidden files","forget a variable"]),
}
rng = random.Random(20261204)
out = []
for tmpl, slots in T.items():
    out.extend(templates.fill(tmpl, slots, rng, 40))
rng.shuffle(out)
path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "own_hardneg_benign.json")
with open(path, "w") as f:
    json.dump(out, f, indent=0, ensure_ascii=False)
print(len(out), "texts ->", path)
