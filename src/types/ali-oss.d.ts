// The part of `ali-oss` (6.x, no bundled types) that verify and the tests use.
// Kept rather than @types/ali-oss (6.23.3): that package makes `list()`'s options and the
// query's 'max-keys' required, which the client does not, so the emulator tests could not
// list as a real caller does without changing the requests they send.
declare module 'ali-oss' {
  interface OSSOptions {
    accessKeyId: string
    accessKeySecret: string
    stsToken?: string
    bucket?: string
    region?: string
    endpoint?: string
    secure?: boolean
    cname?: boolean
    timeout?: number | string
    retryMax?: number
    refreshSTSToken?: () => Promise<{ accessKeyId: string, accessKeySecret: string, stsToken: string }>
    refreshSTSTokenInterval?: number
  }
  interface OSSResponse { status: number, headers: Record<string, string> }
  interface ObjectMeta { name: string, size: number, etag: string }
  interface ListResult { objects: ObjectMeta[] | undefined, prefixes: string[] | null, isTruncated: boolean, res: OSSResponse }

  class OSS {
    constructor (options: OSSOptions)
    put (name: string, content: Buffer | string, options?: Record<string, unknown>): Promise<{ name: string, res: OSSResponse }>
    get (name: string, options?: Record<string, unknown>): Promise<{ content: Buffer, res: OSSResponse }>
    head (name: string, options?: Record<string, unknown>): Promise<{ res: OSSResponse, status: number }>
    delete (name: string, options?: Record<string, unknown>): Promise<{ res: OSSResponse }>
    list (query: Record<string, string | number> | null, options?: Record<string, unknown>): Promise<ListResult>
    listV2 (query?: Record<string, string | number>, options?: Record<string, unknown>): Promise<ListResult & { keyCount: number }>
    multipartUpload (name: string, file: Buffer, options?: { partSize?: number, parallel?: number }): Promise<{ name: string, etag?: string, res: OSSResponse }>
    initMultipartUpload (name: string, options?: Record<string, unknown>): Promise<{ uploadId: string }>
    uploadPart (name: string, uploadId: string, partNo: number, file: string, start: number, end: number): Promise<{ etag: string }>
    completeMultipartUpload (name: string, uploadId: string, parts: Array<{ number: number, etag: string }>): Promise<{ etag?: string, res: OSSResponse }>
    abortMultipartUpload (name: string, uploadId: string): Promise<{ res: OSSResponse }>
  }
  export default OSS
}
