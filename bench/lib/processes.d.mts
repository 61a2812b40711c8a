// Types for the process helpers that the TypeScript end-to-end test shares with bench/ and chaos/.
export declare const childEnv: NodeJS.ProcessEnv;
export declare function freePort(): Promise<number>;
export declare function sleep(ms: number): Promise<void>;
export declare function signalGroup(pid: number, signal: NodeJS.Signals | 0): void;
export declare function groupAlive(pid: number): boolean;
export declare function stopProcessGroup(pid: number): Promise<void>;
export declare function groupRssMb(pid: number): Promise<number | null>;
