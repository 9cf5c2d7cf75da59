import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DeadLetterReasons, ErrorCodes } from '../../src/index.js';

const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');

describe('error catalogue', () => {
  it('documents every error code in docs/errors.md', () => {
    for (const code of Object.values(ErrorCodes)) expect(doc, code).toContain(`| \`${code}\` |`);
  });

  it('documents no code that does not exist', () => {
    const documented = [...doc.matchAll(/\| `(SLUICE_[A-Z_]+)` \|/g)].map((m) => m[1]);
    expect(documented.sort()).toEqual(Object.values(ErrorCodes).sort());
  });

  it('documents every dead-letter reason', () => {
    for (const reason of DeadLetterReasons) expect(doc, reason).toContain(`| \`${reason}\` |`);
  });
});
