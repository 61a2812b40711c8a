export { serve, type ServeOptions } from "./serve.ts";
export { RunObject } from "./objects/RunObject.ts";
export { Scheduler } from "./objects/Scheduler.ts";
export { FlowObject } from "./objects/FlowObject.ts";
export { StepflareService } from "./rpc.ts";
