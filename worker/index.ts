export { serve, type ServeOptions } from "./serve.ts";
export { RunObject } from "./runs/RunObject.ts";
export { Scheduler } from "./schedule/Scheduler.ts";
export { FlowObject } from "./flow/FlowObject.ts";
export { StepflareService } from "./rpc.ts";
