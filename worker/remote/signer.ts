import type { Env } from "../platform/env.ts";
import { isDevMode } from "../platform/env.ts";
import { signRequest, verifyResponseSignature } from "./signature.ts";
import type { AppSigner } from "./transport.ts";

/**
 * How requests to apps are signed and their answers checked: outside dev mode with
 * `STEPFLARE_SIGNING_KEY` (the apps' `INNGEST_SIGNING_KEY`), as Inngest does it; in dev mode not at
 * all, as its Dev Server does. Throws outside dev mode without the key: an app in cloud mode
 * refuses unsigned requests anyway.
 *
 * @example
 * const signer = appRequestSigner(env);
 * const { body, headers } = signer ? await signer.sign(plain) : { body: plain, headers: {} };
 */
export function appRequestSigner(env: Pick<Env, "STEPFLARE_DEV" | "STEPFLARE_SIGNING_KEY">): AppSigner | undefined {
  if (isDevMode(env)) return undefined;
  const key = env.STEPFLARE_SIGNING_KEY;
  if (!key) throw new Error("this Worker has no STEPFLARE_SIGNING_KEY secret to sign its requests to apps with");
  return {
    async sign(body) {
      const signed = await signRequest(body, key);
      return { body: signed.body, headers: { "x-inngest-signature": signed.signature } };
    },
    // The SDK signs its answer with the key that verified the request: ours.
    verify: (signature, body) => verifyResponseSignature(signature, body, [key]),
  };
}
