import Table from 'cli-table3';

/**
 * A table for a terminal. Cells are shown as the text they are: control characters a message may
 * carry (an ANSI escape in a header or an error text) are made visible, so that nothing a producer
 * wrote can move the cursor or recolour the operator's terminal.
 */
export function table(head: readonly string[], rows: readonly (readonly unknown[])[]): string {
  const t = new Table({ head: [...head], style: { head: [], border: [] }, wordWrap: true });
  for (const row of rows) t.push(row.map((cell) => visible(cell === undefined || cell === null ? '' : String(cell))));
  return t.toString();
}

/** Control characters (but tab and newline) shown as `\xNN` / `\uNNNN`. */
export function visible(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point.
  return text.replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029]/g, (c) => {
    const code = c.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}
