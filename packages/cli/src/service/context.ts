/** The platform, paths and service manager a service command works with. */
import type { Io } from '../command.ts'
import { serviceManager, type ServiceManager } from './manager.ts'
import { servicePaths, servicePlatform, type ServicePaths, type ServicePlatform } from './paths.ts'

export interface ServiceContext {
  platform: ServicePlatform
  paths: ServicePaths
  manager: ServiceManager
}

/** Throws ServiceError on a platform without a supported service manager. */
export function serviceContext (io: Io): ServiceContext {
  const platform = servicePlatform(io.platform ?? process.platform)
  const paths = servicePaths(platform, io.env)
  const manager = serviceManager(platform, { paths, env: io.env, uid: process.getuid?.() ?? 0 })
  return { platform, paths, manager }
}
