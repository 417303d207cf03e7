/** The chat route's configuration file: defaults, and refusals that name the field or the variable. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadChatRouteConfig } from '../../src/gateway/llm';
import { DEFAULT_MAX_MESSAGES, DEFAULT_SAFE_MESSAGE } from '../../src/gateway/llm/config';

const file = (content: string) => {
  const p = path.join(mkdtempSync(path.join(os.tmpdir(), 'chat-config-')), 'llm.json');
  writeFileSync(p, content);
  return p;
};

describe('chat route configuration', () => {
  it('is absent without MLOPS_GATEWAY_LLM_CONFIG', () => {
    expect(loadChatRouteConfig({})).toBeUndefined();
  });

  it('fills every default from a minimal file', () => {
    const c = loadChatRouteConfig({
      MLOPS_GATEWAY_LLM_CONFIG: file('{"upstream":{"baseUrl":"http://127.0.0.1:8000/v1"}}'),
    });
    expect(c?.policy).toEqual({ input: 'block', leak: 'block', moderation: 'block', pii: 'redact' });
    expect(c?.limits.maxMessages).toBe(DEFAULT_MAX_MESSAGES);
    expect(c?.safeMessage).toBe(DEFAULT_SAFE_MESSAGE);
  });

  it.each([
    ['{"upstream":{"baseUrl":"not a url"}}', 'upstream.baseUrl'],
    ['{"upstream":{"baseUrl":"http://x/v1"},"policy":{"input":"maybe"}}', 'policy.input'],
    ['{"upstream":{"baseUrl":"http://x/v1","apiKeyEnv":"lower-case"}}', 'upstream.apiKeyEnv'],
    ['{"upstream":{"baseUrl":"http://x/v1"},"limits":{"maxMessages":0}}', 'limits.maxMessages'],
    ['{"upstream":{"baseUrl":"http://x/v1"},"unknown":1}', 'unknown'],
  ])('refuses %s naming %s', (content, field) => {
    expect(() => loadChatRouteConfig({ MLOPS_GATEWAY_LLM_CONFIG: file(content) })).toThrow(field);
  });

  it('names the variable when the file is not JSON', () => {
    expect(() => loadChatRouteConfig({ MLOPS_GATEWAY_LLM_CONFIG: file('{') })).toThrow(
      'MLOPS_GATEWAY_LLM_CONFIG=',
    );
  });
});
