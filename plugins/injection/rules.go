package injection

// category groups rules that signal the same thing; a text's score adds the
// strongest rule of each category it hits, plus a little for more rules of
// that category, plus a bonus when several categories co-occur.
type category int

const (
	catOverride category = iota // "ignore previous instructions"
	catExtract                  // "reveal your system prompt"
	catPersona                  // "you are now", "from now on", "pretend to be"
	catNoRules                  // "no restrictions", "not bound by", "never refuse"
	catEvasion                  // "jailbreak", "DAN", "developer mode", "OpenAI policy"
	catFormat                   // "stay in character", "never add warnings"
	catHarm                     // "unethical", "illegal", "explicit"
	catTarget                   // addressing a chat model by name
	numCategories
)

var categoryNames = [numCategories]string{
	catOverride: "instruction-override",
	catExtract:  "prompt-extraction",
	catPersona:  "role-play",
	catNoRules:  "rule-removal",
	catEvasion:  "policy-evasion",
	catFormat:   "output-coercion",
	catHarm:     "harm-vocabulary",
	catTarget:   "model-addressing",
}

func (c category) String() string { return categoryNames[c] }

type ruleSpec struct {
	cat     category
	weight  float64
	pattern string
}

// Shared word lists.
const (
	instrNouns  = "instructions|instruction|directives|directive|rules|guidelines|prompts|prompt|programming|commands|constraints|restrictions|guidance|training|policies|conditioning"
	ruleNouns   = "rules|restrictions|restriction|limits|limitations|filters|filter|guidelines|boundaries|censorship|morals|ethics|constraints|policies|safeguards|moderation|laws|principles"
	refuseVerbs = "refuse|decline|deny|reject"
)

// wordRules are matched on words of any space-separated language.
var wordRules = []ruleSpec{
	// Instruction override.
	{catOverride, 4, "ignore|ignoring|disregard|disregarding|forget|forgetting|bypass|override|overwrite|abandon|discard ~4 previous|prior|above|earlier|preceding|former|initial|original|all|any|your|those ~3 " + instrNouns},
	{catOverride, 3.5, "forget ~2 everything|all ~4 before|previous|prior|said|told|learned|above|earlier|instructed"},
	{catOverride, 3.5, "olvida|olvide ~1 todo ~3 anterior|antes|dicho"},
	{catOverride, 3.5, "oublie|oubliez ~1 tout ~4 precede|avant|dit|precedent|precedentes"},
	{catOverride, 3.5, "vergiss|vergessen|vergesse ~1 alles ~4 davor|vorher|bisherige|bisher|gesagt|zuvor"},
	{catOverride, 3.5, "esqueca|esquece ~1 tudo ~3 anterior|antes|dito"},
	{catOverride, 3.5, "dimentica ~1 tutto ~3 prima|precedente|detto"},
	{catOverride, 3.5, "забудь|забудьте ~1 все|всё ~3 что|ранее|предыдущие|до"},
	{catOverride, 2, "your|the new ~1 instructions|rules|directives|programming"},
	{catOverride, 2, "ignore|disregard|forget|bypass ~3 ethical|moral|safety|content|legal ~2 guidelines|policies|rules|principles|considerations|concerns|standards|restrictions|filters"},
	{catOverride, 4, "ignora|ignore|ignorar|olvida|olvide|olvidar|omite|descarta ~4 instrucciones|reglas|indicaciones|directrices|ordenes"},
	{catOverride, 4, "ignore|ignorez|ignorer|oublie|oubliez|oublier ~4 instructions|regles|consignes|directives"},
	{catOverride, 4, "ignoriere|ignorier|ignorieren|vergiss|vergessen|missachte ~4 anweisungen|regeln|vorgaben|richtlinien|instruktionen|befehle"},
	{catOverride, 4, "ignore|ignora|ignorar|esqueca|esquece|esquecer|desconsidere ~4 instrucoes|regras|diretrizes|ordens"},
	{catOverride, 4, "ignora|ignori|ignorare|dimentica|dimentichi|dimenticare ~4 istruzioni|regole|direttive|indicazioni"},
	{catOverride, 4, "игнорируй|игнорируйте|проигнорируй|игнорировать|забудь|забудьте ~4 инструкции|инструкций|инструкциям|правила|правил|указания|указаний"},

	// System prompt extraction.
	{catExtract, 4, "reveal|show|print|repeat|display|tell|leak|dump|disclose|output ~3 your|the ~2 system|initial|hidden|secret|original|first ~1 prompt|instructions|message"},
	{catExtract, 4, "what ~3 your ~1 system|initial|hidden ~1 prompt|instructions"},
	{catExtract, 2, "repeat|print ~4 words|text|everything ~2 above"},
	{catExtract, 2, "prompt|instrucciones|mensaje del sistema"},
	{catExtract, 2, "systemprompt|systemanweisungen|systemnachricht"},
	{catExtract, 2, "системный промпт|промт"},

	// Role-play framing.
	{catPersona, 1.5, "you are|re ~1 now|henceforth"},
	{catPersona, 1.5, "you are|re no longer"},
	{catPersona, 1.5, "from now|here ~1 on|onwards"},
	{catPersona, 1, "act|acting ~1 as|like"},
	{catPersona, 1, "pretend|pretending"},
	{catPersona, 1.5, "pretend ~1 to ~1 be"},
	{catPersona, 1, "roleplay|roleplaying|role ~1 play|playing"},
	{catPersona, 1.5, "you will|must|shall|are ~2 act|behave|respond|answer|reply|pretend|roleplay|simulate|play ~3 as|like"},
	{catPersona, 1, "simulate|simulating|emulate|emulating|impersonate|impersonating"},
	{catPersona, 1.5, "your new ~1 name|role|persona|identity|personality"},
	{catPersona, 1, "i want you to ~1 act|pretend|be|answer|respond|become|roleplay"},
	{catPersona, 1, "let|lets ~1 play ~1 a game"},
	{catPersona, 0.5, "hypothetical|fictional|imaginary ~3 world|scenario|ai|model|chatbot|setting|universe"},
	{catPersona, 1.5, "a partir de ahora"},
	{catPersona, 1.5, "ahora eres|seras"},
	{catPersona, 1, "actua|actue|actuar|comportate ~1 como"},
	{catPersona, 1.5, "finge|finja|fingir ~2 ser|que"},
	{catPersona, 1.5, "a partir de maintenant"},
	{catPersona, 1.5, "desormais|dorenavant"},
	{catPersona, 1.5, "tu|vous es|etes ~1 maintenant|desormais"},
	{catPersona, 1.5, "fais|faites ~1 semblant"},
	{catPersona, 1, "agis|agissez|comporte ~2 comme"},
	{catPersona, 1.5, "von nun an"},
	{catPersona, 1.5, "ab jetzt|sofort"},
	{catPersona, 1.5, "du bist ~1 jetzt|nun|ab"},
	{catPersona, 1.5, "tu|tue so als"},
	{catPersona, 1, "verhalte dich wie|als"},
	{catPersona, 1.5, "a partir de agora"},
	{catPersona, 1.5, "voce agora e|sera"},
	{catPersona, 1.5, "finja|finge|fingir ~2 ser|que"},
	{catPersona, 1, "aja|atue|comporte ~2 como"},
	{catPersona, 1.5, "ora in poi"},
	{catPersona, 1.5, "adesso|ora sei"},
	{catPersona, 1.5, "fingi|fingiti|fingere ~1 di"},
	{catPersona, 1.5, "fai ~1 finta"},
	{catPersona, 1, "agisci|comportati ~1 come"},
	{catPersona, 1.5, "с этого момента"},
	{catPersona, 1.5, "отныне|притворись|притворитесь"},
	{catPersona, 1.5, "теперь ты|вы"},
	{catPersona, 1, "веди|ведите|действуй ~2 как"},

	// Rule removal.
	{catNoRules, 2, "no|without|zero|any ~2 " + ruleNouns},
	{catNoRules, 2, "free|freed|unbound|liberated ~1 from|of ~3 " + ruleNouns + "|openai|confines|shackles|programming"},
	{catNoRules, 2, "not|never|t ~1 bound|restricted|constrained|governed ~1 by"},
	{catNoRules, 2, "not|t|never|cannot ~2 follow|abide|adhere|care|obey|comply|respect ~4 " + ruleNouns + "|policy|law|terms"},
	{catNoRules, 1.5, "not|t|never|cannot ~2 " + refuseVerbs},
	{catNoRules, 1.5, "can|will|could ~1 do|say|answer|generate|write ~1 anything"},
	{catNoRules, 2, "break|breaks|bypass|circumvent|evade|ignore ~3 " + ruleNouns},
	{catNoRules, 1.5, "regardless ~3 legality|morality|ethics|ethical|legal|moral|consequences|harmful|dangerous|offensive|illegal|how"},
	{catNoRules, 1.5, "no ~1 matter ~2 how ~2 immoral|unethical|illegal|dangerous|offensive|harmful|inappropriate|explicit|wrong"},
	{catNoRules, 1.5, "sin ~2 restricciones|limites|filtros|censura|reglas|limitaciones"},
	{catNoRules, 1.5, "sans|aucune|aucun ~2 restrictions|restriction|limites|limite|filtres|filtre|censure|regles|regle"},
	{catNoRules, 1.5, "ohne|keine ~2 einschrankungen|grenzen|filter|zensur|regeln|beschrankungen"},
	{catNoRules, 1.5, "sem|nenhuma ~2 restricoes|restricao|limites|filtros|censura|regras|regra"},
	{catNoRules, 1.5, "senza|nessuna ~2 restrizioni|restrizione|limiti|filtri|censura|regole|regola"},
	{catNoRules, 1.5, "без|нет ~2 ограничений|фильтров|цензуры|правил"},

	// Policy-evasion vocabulary.
	{catEvasion, 1.5, "jailbr*"},
	{catEvasion, 1, "uncensor*|unfilter*|unrestricted|unmoderated|unrestrained"},
	{catEvasion, 1.5, "=DAN"},
	{catEvasion, 2.5, "you|are|re|be|as|called|named ~2 =DAN"},
	{catEvasion, 2.5, "do anything now"},
	{catEvasion, 1.5, "developer|dev|god|jailbreak|evil|unrestricted|unlocked ~1 mode"},
	{catEvasion, 2, "openai|anthropic ~3 policy|policies|guidelines|rules|restrictions|filters|content"},
	{catEvasion, 1, "content ~1 policy|policies|filter|filters|moderation"},
	{catEvasion, 1, "sin|sans|ohne|sem|senza|без ~1 censura|censure|zensur|цензуры"},

	// Output coercion.
	{catFormat, 1.5, "stay|remain|staying|stays ~1 in ~1 character"},
	{catFormat, 1.5, "break|breaking|breaks ~1 character"},
	{catFormat, 1, "always|never ~3 respond|reply|answer|say|mention|break|refuse|apologize"},
	{catFormat, 1, "no|never|t|not|without ~3 warnings|warning|disclaimers|disclaimer|apologies|caveats|moralizing|lectures|censoring"},
	{catFormat, 1, "begin|start ~3 your|each ~1 reply|response|output|answer|replies|responses|outputs|message ~1 with"},

	// Harm vocabulary.
	{catHarm, 0.5, "unethical|immoral|amoral|illegal|nsfw|profanity|vulgar|malicious|explicit|offensive|harmful"},

	// Addressing a chat model.
	{catTarget, 0.5, "chatgpt|gpt|gpt3|gpt4|openai|bard|bing|claude|llama"},
	{catTarget, 0.5, "ai|large ~1 language ~1 model"},
}

// pairSpec is a rule for scripts without spaces.
type pairSpec struct {
	cat           category
	weight        float64
	first, second string
}

var pairRules = []pairSpec{
	{catOverride, 4, "忽略", "指令"}, {catOverride, 4, "忽略", "指示"}, {catOverride, 4, "忽略", "规则"},
	{catOverride, 4, "无视", "指令"}, {catOverride, 4, "无视", "规则"}, {catOverride, 4, "忽视", "指令"},
	{catOverride, 4, "忘记", "指令"}, {catOverride, 4, "忘掉", "指令"}, {catOverride, 4, "忘记", "规则"},
	{catOverride, 4, "無視", "指示"}, {catOverride, 4, "忘れ", "指示"},
	{catExtract, 4, "系统", "提示词"}, {catExtract, 4, "系統", "提示"}, {catExtract, 2, "システムプロンプト", ""},
	{catPersona, 1.5, "从现在开始", ""}, {catPersona, 1.5, "從現在開始", ""}, {catPersona, 1.5, "你现在是", ""},
	{catPersona, 1, "假装", ""}, {catPersona, 1, "扮演", ""}, {catPersona, 1.5, "今から", ""},
	{catNoRules, 2, "没有任何", "限制"}, {catNoRules, 2, "不受", "限制"}, {catNoRules, 2, "没有", "限制"},
	{catNoRules, 2, "无限制", ""}, {catNoRules, 2, "不受", "约束"}, {catNoRules, 2, "没有", "道德"},
	{catNoRules, 2, "不要", "遵守"}, {catNoRules, 2, "制限なし", ""}, {catNoRules, 2, "制限のない", ""},
	{catEvasion, 1.5, "越狱", ""}, {catEvasion, 1, "无审查", ""}, {catEvasion, 1, "开发者模式", ""},
	{catFormat, 1.5, "保持角色", ""},
}
