/**
 * Hides credentials in connection strings and URLs: `amqp://user:secret@host` →
 * `amqp://user:***@host`, `SharedAccessKey=abc` → `SharedAccessKey=***`, `password=x` → `password=***`.
 */
export function redactSecrets(text: string): string {
  return text
    .replace(/(\b[a-z][a-z0-9+.-]*:\/\/[^:/@\s]*:)[^@\s]*@/gi, '$1***@')
    .replace(
      /((?:SharedAccessKey|SharedAccessSignature|AccountKey|password|pwd|token|secret)\s*=\s*)[^;&\s]+/gi,
      '$1***',
    );
}
