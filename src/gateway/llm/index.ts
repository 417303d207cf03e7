/**
 * The gateway's guarded chat route (`POST /v1/chat/completions`): OpenAI-compatible proxying to a
 * configured upstream with input guard, leak prevention and output moderation (src/guardrails).
 */
export {
  createChatRoute,
  loadGuards,
  CHAT_COMPLETIONS_PATH,
  type ChatRoute,
  type ChatContext,
} from './route';
export {
  loadChatRouteConfig,
  parseChatRouteConfig,
  type ChatRouteConfig,
  type ChatRouteConfigInput,
} from './config';
