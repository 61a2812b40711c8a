// The second deploy of the stuck-run end-to-end test: `nap-then-finish` is renamed `nap-then-finish-v2`.
import { serve } from "../../../worker/index.ts";
import { alarmLost, app, keepsFailing, renamedFunction, withFixRoute } from "./functions.ts";

export * from "../../../worker/index.ts";

export default withFixRoute(serve({ client: app, functions: [renamedFunction("nap-then-finish-v2"), alarmLost, keepsFailing] }) as ExportedHandler<never, never>);
