// The `grep` of a logs request: a JavaScript regular expression the agents apply to each line.
// Node's regex engine backtracks, so a pattern like (a+)+$ can take exponential time on one line
// and stall the agent's event loop. Two guards: patterns with a quantified group that itself
// holds a quantifier or an alternation (star height above one), or a back-reference, are refused, and a line is
// matched on its first MAX_GREP_INPUT characters only, which bounds what a polynomial pattern
// (.*a.*b.*c) can cost per line.

export const MAX_GREP_LENGTH = 256;
export const MAX_GREP_INPUT = 4096;

/** Why `pattern` is refused, or undefined when it may be used. */
export function grepProblem(pattern: string): string | undefined {
  if (pattern.length === 0) return 'an empty pattern';
  if (pattern.length > MAX_GREP_LENGTH) return `at most ${MAX_GREP_LENGTH} characters`;
  try {
    new RegExp(pattern);
  } catch (err) {
    return `not a regular expression: ${(err as Error).message}`;
  }
  if (/\\[1-9]|\\k</.test(pattern)) return 'back-references are not allowed';
  if (nestedQuantifier(pattern)) return 'a repeated group holds a repetition or alternation (like (a+)+ or (a|b)*): such patterns can take exponential time';
  return undefined;
}

const QUANTIFIER_START = new Set(['*', '+', '?', '{']);

/** True when a group followed by a quantifier contains a quantifier of its own. */
function nestedQuantifier(pattern: string): boolean {
  // For each open group: whether a quantifier occurred inside it.
  const open: boolean[] = [];
  let inClass = false;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '\\') {
      i++;
      continue;
    }
    if (inClass) {
      if (c === ']') inClass = false;
      continue;
    }
    if (c === '[') inClass = true;
    else if (c === '(') open.push(false);
    else if (c === ')') {
      const inner = open.pop() ?? false;
      const next = pattern[i + 1];
      const quantified = next !== undefined && QUANTIFIER_START.has(next);
      if (quantified && inner && next !== '?') return true;
      // The group counts as a quantifier inside its parent when it is repeated or holds one.
      if (open.length && (inner || quantified)) open[open.length - 1] = true;
    } else if (c === '|' || (QUANTIFIER_START.has(c) && !(c === '?' && pattern[i - 1] === '('))) {
      // An alternation repeated ((a|aa)+) backtracks as badly as a nested quantifier.
      if (open.length) open[open.length - 1] = true;
    }
  }
  return false;
}

/** The line test for a pattern grepProblem accepted. */
export function grepMatcher(pattern: string): (line: string) => boolean {
  const re = new RegExp(pattern);
  return (line) => re.test(line.length > MAX_GREP_INPUT ? line.slice(0, MAX_GREP_INPUT) : line);
}
