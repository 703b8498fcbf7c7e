// The lesson's optional features, each in its own module with its own strings and styles; callui.js
// installs them once with the lesson's context:
//   { session, state, notice, root, side, extra, grid, banner, tileOf, panel }
// A feature listens to session "server" events and calls session.request(); it adds its own
// buttons to `extra`, tabs through `panel.addTab` where it needs one, and never edits another's DOM.

import { createRecording } from "./recording.js";
import { createCaptions } from "./captions.js";
import { createNoise } from "./noise.js";
import { createBreakouts } from "./breakouts.js";
import { createBoard } from "./board.js";

export function installFeatures(ctx) {
  return {
    recording: createRecording(ctx),
    captions: createCaptions(ctx),
    noise: createNoise(ctx),
    breakouts: createBreakouts(ctx),
    board: createBoard(ctx),
  };
}
