// Registers the training loop with the command line.
import { registerTrainer } from '../cli/trainer';
import { SupconTrainer } from './trainer';

registerTrainer((setup) => new SupconTrainer(setup));

export { SupconTrainer, linearEvaluation, channelStats, trainingPipeline } from './trainer';
export { ConvNet, PixelMlp, makeEncoder } from './encoders';
export type { Encoder, EncoderName } from './encoders';
