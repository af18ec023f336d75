// Registers the training loop with the command line.
import { registerTrainer, TrainerFactory } from '../cli/trainer';
import { SupconTrainer } from './trainer';

/** The package's own trainer factory, the one registered here. */
export const supconTrainerFactory: TrainerFactory = (setup) => new SupconTrainer(setup);
registerTrainer(supconTrainerFactory);

export { SupconTrainer, linearEvaluation, channelStats, trainingPipeline } from './trainer';
export { ConvNet, PixelMlp, makeEncoder } from './encoders';
export type { Encoder, EncoderName } from './encoders';
