import { type ConnectionState, audienceToPath } from './connection-state.js';
import type { AmqpMessage } from './message-codec.js';
import { verifySasToken } from './sas.js';

export interface CbsCredentials {
  readonly keyName: string;
  readonly key: string;
  readonly now: () => number;
}

/** Handles a `$cbs` put-token request and returns the reply (status-code 202 or 401). */
export function handleCbsRequest(
  request: AmqpMessage,
  connection: ConnectionState,
  creds: CbsCredentials,
): AmqpMessage {
  const props: Record<string, unknown> = request.application_properties ?? {};
  const reply = (code: number, description: string): AmqpMessage =>
    ({
      to: request.reply_to,
      correlation_id: request.message_id,
      application_properties: { 'status-code': code, 'status-description': description },
      body: undefined,
    }) as AmqpMessage;

  if (props.operation !== 'put-token') return reply(400, `Unsupported CBS operation '${String(props.operation)}'.`);
  const token: unknown = request.body;
  if (typeof token !== 'string') return reply(400, 'The put-token body must be a string token.');
  const type = props.type;
  if (type !== 'servicebus.windows.net:sastoken') {
    return reply(401, `Unauthorized: token type '${String(type)}' is not supported by the emulator (only SAS).`);
  }
  const result = verifySasToken(token, { keyName: creds.keyName, key: creds.key, nowMs: creds.now() });
  if (!result.ok) return reply(401, `Unauthorized: ${result.reason}`);
  const name = typeof props.name === 'string' ? props.name : result.audience;
  if (audienceToPath(name) !== audienceToPath(result.audience)) {
    return reply(401, 'Unauthorized: the token audience does not match the requested name.');
  }
  connection.authorize(audienceToPath(result.audience), result.expiresAtMs);
  return reply(202, 'Accepted');
}
