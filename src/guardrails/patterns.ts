/**
 * Patterns and heuristics, the input guard's second layer: hand-written rules for the shapes prompt
 * attacks take (overriding earlier instructions, asking for the system prompt, persona jailbreaks,
 * chat-template tokens). Written by this project from the attack families' descriptions, not fitted
 * to any corpus, so the evaluation harness can hold whole families out of training and still run them.
 *
 * Each rule names itself and carries a weight; a segment's score is 1 - prod(1 - w) over the rules that
 * fired. Hard negatives the rules are written around: "ignore my last order" (no instruction noun),
 * "what are your instructions for returns?" (no system/initial qualifier), "repeat my order number".
 * Every regex is linear: no nested quantifiers, bounded gaps.
 */

export interface PatternRule {
  name: string;
  weight: number;
  re: RegExp;
}

/** Up to a few words between two parts of a rule ("ignore all of the previous instructions"). */
const GAP = String.raw`(?:\W+\w+){0,4}?\W+`;

const r = (name: string, weight: number, source: string): PatternRule => ({
  name,
  weight,
  re: new RegExp(source, 'i'),
});

export const PATTERN_RULES: readonly PatternRule[] = [
  r(
    'override_instructions',
    0.9,
    String.raw`\b(?:ignore|disregard|forget|override|bypass|skip|drop|abandon)${GAP}(?:previous|prior|above|earlier|preceding|former|original|initial|system|all|any|your|the)${GAP}?(?:instructions?|directives?|rules|guidelines|prompts?|programming|constraints|restrictions|policies|guardrails)\b`,
  ),
  r(
    'new_instructions',
    0.6,
    String.raw`\b(?:new|updated|revised|real|true)\s+(?:system\s+)?(?:instructions?|directives?|rules)\s*(?::|are\b|follow\b)`,
  ),
  r(
    'reveal_system_prompt',
    0.9,
    String.raw`\b(?:reveal|show|print|output|repeat|display|dump|leak|expose|share|recite|tell\s+me|give\s+me|write\s+out|copy|what\s+(?:is|are|was|were))${GAP}?(?:your|the|my|its)?\s*(?:entire\s+|full\s+|exact\s+|complete\s+|hidden\s+|secret\s+|internal\s+|original\s+|initial\s+|first\s+|system\s+|developer\s+|starting\s+|pre-?)+(?:prompts?|instructions?|messages?|rules|configuration|directives|guidelines|context|settings|initiali[sz]ation)\b`,
  ),
  r('system_prompt_term', 0.45, String.raw`\bsystem\s*(?:prompt|message|instructions?)\b`),
  r(
    'repeat_above',
    0.85,
    String.raw`\b(?:repeat|output|print|copy|reproduce|translate|summari[sz]e|spell\s+out)${GAP}?(?:the\s+)?(?:words|text|everything|all|content|lines?|messages?)${GAP}?(?:above|before|prior|preceding|so\s+far|you\s+were\s+given|at\s+the\s+(?:beginning|start|top))\b`,
  ),
  r(
    'told_before',
    0.75,
    String.raw`\bwhat\s+(?:were|have)\s+you\s+(?:been\s+)?(?:told|instructed|programmed|configured)\b`,
  ),
  r(
    'starting_with_you_are',
    0.85,
    String.raw`\b(?:starting|beginning|begin|start)\s+with\s*["'“]\s*you\s+are\b`,
  ),
  r(
    'code_block_dump',
    0.5,
    String.raw`\b(?:in|into|inside)\s+a\s+(?:txt|text|code|markdown)\s+(?:code\s+)?(?:block|fence)\b`,
  ),
  r(
    'dan',
    0.9,
    String.raw`\b(?:do\s+anything\s+now|DAN\s+mode|you\s+are\s+(?:now\s+)?DAN|act\s+as\s+DAN|\bSTAN\b.{0,40}strive\s+to\s+avoid\s+norms)`,
  ),
  r(
    'developer_mode',
    0.85,
    String.raw`\b(?:developer|dev|god|jailbreak|unrestricted|debug|maintenance|admin)\s+mode\s+(?:enabled|activated|on|is\s+now)\b|\benable\s+(?:developer|dev|god|jailbreak)\s+mode\b`,
  ),
  r('jailbreak_word', 0.6, String.raw`\bjail\s*-?\s*br(?:eak|oken)\b`),
  r(
    'unfiltered_persona',
    0.85,
    String.raw`\b(?:act|pretend|roleplay|role-play|behave|respond|answer)${GAP}?(?:as|like)${GAP}?(?:an?\s+)?(?:unfiltered|uncensored|unrestricted|amoral|unethical|evil|rogue|jailbroken|unbound|limitless)\b`,
  ),
  r(
    'no_rules',
    0.75,
    String.raw`\b(?:no|without|free\s+(?:of|from)|not\s+bound\s+by|doesn't\s+have|does\s+not\s+have|don't\s+have|never\s+follows?)${GAP}?(?:any\s+)?(?:ethical|moral|content|safety|openai|usage)?\s*(?:guidelines|restrictions|filters?|limitations|policies|censorship|boundaries|principles|constraints)\b`,
  ),
  r(
    'stay_in_character',
    0.7,
    String.raw`\b(?:stay|remain|keep)\s+in\s+character\b|\bbreak(?:ing)?\s+character\b`,
  ),
  r(
    'two_responses',
    0.6,
    String.raw`\b(?:two|2)\s+(?:different\s+)?(?:responses|answers|paragraphs)\b.{0,80}\b(?:normal|classic|filtered)\b`,
  ),
  r(
    'chat_template_token',
    0.9,
    String.raw`<\|(?:im_start|im_end|system|endoftext|start_header_id|eot_id)\|>|\[/?INST\]|<<\/?SYS>>|^\s*#{2,}\s*(?:system|instruction)s?\s*:?\s*$`,
  ),
  r('role_injection', 0.7, String.raw`(?:^|\n)\s*(?:system|assistant)\s*:\s*\S`),
  r(
    'override_authority',
    0.6,
    String.raw`\b(?:system|admin|root|developer|security)\s+override\b|\bI\s+am\s+(?:your|the|an?)\s+(?:developer|creator|administrator|admin|programmer|openai\s+employee)\b`,
  ),
  r(
    'hypothetical_unfiltered',
    0.5,
    String.raw`\b(?:hypothetical|fictional|imaginary)\s+(?:scenario|story|world|ai|model)\b.{0,120}\b(?:no|without)\s+(?:rules|restrictions|limits|filters)\b`,
  ),
  r(
    'refusal_suppression',
    0.7,
    String.raw`\bnever\s+(?:refuse|decline|say\s+(?:no|you\s+can't|sorry))\b|\bdo\s+not\s+(?:apologi[sz]e|include\s+(?:any\s+)?(?:warnings?|disclaimers?))\b`,
  ),
  r(
    'token_smuggling_talk',
    0.4,
    String.raw`\b(?:decode|decipher)\s+(?:this|the\s+following)\b.{0,60}\b(?:and\s+(?:follow|execute|do|obey))\b`,
  ),
];

export interface PatternResult {
  score: number;
  hits: string[];
}

/** Characters of a segment the rules read from its start; attack preambles state their intent early. */
export const PATTERN_HEAD_CHARS = 8192;
/** Characters read from its end (the request after a long preamble). */
export const PATTERN_TAIL_CHARS = 2048;

/** The patterns layer over one segment (its head and tail when it is long). */
export function matchPatterns(input: string, rules: readonly PatternRule[] = PATTERN_RULES): PatternResult {
  const text =
    input.length > PATTERN_HEAD_CHARS + PATTERN_TAIL_CHARS
      ? `${input.slice(0, PATTERN_HEAD_CHARS)}\n${input.slice(-PATTERN_TAIL_CHARS)}`
      : input;
  let keep = 1;
  const hits: string[] = [];
  for (const rule of rules) {
    if (rule.re.test(text)) {
      hits.push(rule.name);
      keep *= 1 - rule.weight;
    }
  }
  return { score: 1 - keep, hits };
}
