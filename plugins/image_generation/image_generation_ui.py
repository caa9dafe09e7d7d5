"""The image-generation tab: a class (or, for a Stable Diffusion 3 preset, a prompt), sliders for the
options, a seed with a "random" button, and a gallery where the denoising shows as it happens."""

from __future__ import annotations

import numpy as np

#: The sliders stop here; the Python API and the CLI take any valid value.
MAX_STEPS_SLIDER = 250
MAX_IMAGES_SLIDER = 16
#: How many times the gallery is refreshed while the images are being denoised.
UPDATES = 5
#: The class dropdown's entry for unconditional generation.
NO_CLASS_CHOICE = "none (unconditional)"


def settings_line(task, result: dict) -> str:
    """The settings of a result, and the command that makes the same images again."""
    if "prompt" in result:
        what, given = f"prompt “{result['prompt']}”", f'"{result["prompt"]}"'
    else:
        what = f"class {result['class']}" if result.get("class") is not None else "no class (unconditional)"
        given = result.get("class") or "none"
    flags = (f"--seed {result['seed']} --steps {result['steps']} --guidance {result['guidance']:g} "
             f"--eta {result['eta']:g} --num-images {result['num_images']}")
    if "interpolate_to" in result:
        flags += f" --interpolate-to {result['interpolate_to']}"
        seeds = f"seeds {result['seed']} → {result['interpolate_to']} (spherical interpolation)"
    else:
        seeds = f"seeds {result['seeds'][0]}–{result['seeds'][-1]}" if result["num_images"] > 1 \
            else f"seed {result['seed']}"
    if result["size"] != task.config["image_size"]:
        flags += f" --size {result['size']}"
    preset = f" --preset {task.config['preset']}" if task.config.get("preset") else ""
    return (f"**{what}**, {seeds}, {result['steps']} steps, guidance {result['guidance']:g}, eta "
            f"{result['eta']:g}, {result['size']}×{result['size']} px. Same images again: "
            f"`dlapps predict {task.name} {given} {flags}{preset}`")


def gallery_items(images, captions) -> list:
    return [(np.asarray(image), caption) for image, caption in zip(images, captions)]


def build_ui(task, predictor) -> None:
    import gradio as gr

    from dlapps.plugin import model_summary, raise_for_ui, stack_inputs
    from dlapps_plugins.image_generation.ddim_sampler import to_rgb
    from dlapps_plugins.image_generation.image_grid import enlarge

    preset = task.text_to_image is not None
    options = task.predict_options
    default = predictor.options()
    view_size = default["view_size"]

    def viewable(pixels) -> list:
        rgb = [to_rgb(p) for p in pixels]
        views = [enlarge(image, view_size) for image in rgb]
        return [image if view is None else view for image, view in zip(rgb, views)]

    def generate(source, steps, guidance, num_images, eta, seed, interpolate_to, size, progress=gr.Progress()):
        if preset and (source is None or not str(source).strip()):
            raise gr.Error("Type a prompt first.")
        with raise_for_ui():
            chosen = predictor.options({
                "steps": steps, "guidance": guidance, "num_images": num_images, "eta": eta,
                "seed": None if seed is None else int(seed), "size": int(size or 0),
                "interpolate_to": None if interpolate_to in (None, "") else int(interpolate_to)})
            raw = str(source) if preset else (None if source in (None, NO_CLASS_CHOICE) else source)
            pieces = task.preprocess(raw, chosen)
        seeds = task.image_seeds(chosen)
        captions = [f"seed {a}" if a == b else f"seeds {a}→{b}, mix {mix:.2f}" for a, b, mix in seeds]
        batch = stack_inputs([x for x, _ in pieces])
        if preset:
            progress((0, 1), desc="generating")
            with raise_for_ui():
                pixels = task.forward(predictor.model, batch, chosen)
        else:
            every = max(1, chosen["steps"] // UPDATES)
            progress((0, chosen["steps"]), desc="denoising")
            for done, total, pixels in task.sample(predictor.model, batch["label"], batch["seed"], batch["seed_to"],
                                                   batch["mix"], chosen, every=every):
                progress((done, total), desc="denoising")
                if done < total:
                    yield (gallery_items(viewable(pixels), [f"{c} · step {done}/{total}" for c in captions]),
                           f"Denoising: step {done} of {total}…")
        # The same steps as predict's: preprocess, forward (above), postprocess and combine.
        result = task.combine([task.postprocess(p, context, chosen) for p, (_, context) in zip(pixels, pieces)],
                              pieces.context, chosen)
        yield gallery_items(result.get("views") or result["images"], captions), settings_line(task, result)

    def random_seed():
        return int(np.random.default_rng().integers(0, 1_000_000))

    gr.Markdown(model_summary(predictor))
    with gr.Row():
        with gr.Column():
            if preset:
                source = gr.Textbox(label="Prompt", placeholder="a watercolour of a lighthouse at dawn",
                                    elem_id="image-generation-prompt")
            else:
                choices = [*task.labels(), NO_CLASS_CHOICE] if task.labels() else [NO_CLASS_CHOICE]
                source = gr.Dropdown(choices, value=choices[0], label="Class",
                                     elem_id="image-generation-class")
            low, high = options["steps"].bounds(task.config)
            steps = gr.Slider(low, min(high, MAX_STEPS_SLIDER), value=default["steps"], step=1,
                              label="Denoising steps", elem_id="image-generation-steps")
            guidance = gr.Slider(0.0, 10.0, value=default["guidance"], step=0.1,
                                 label="Guidance (classifier-free; 0: none)", elem_id="image-generation-guidance")
            num_images = gr.Slider(1, MAX_IMAGES_SLIDER, value=default["num_images"], step=1, label="Images",
                                   elem_id="image-generation-num-images")
            eta = gr.Slider(0.0, 1.0, value=default["eta"], step=0.05, visible=not preset,
                            label="eta (0: deterministic DDIM, 1: as noisy as DDPM)", elem_id="image-generation-eta")
            with gr.Row():
                seed = gr.Number(value=default["seed"], precision=0, minimum=0, label="Seed",
                                 elem_id="image-generation-seed")
                dice = gr.Button("🎲 Random", elem_id="image-generation-random-seed")
            interpolate_to = gr.Number(value=None, precision=0, minimum=0,
                                       label="Interpolate to seed (empty: independent images)",
                                       elem_id="image-generation-interpolate-to")
            size = gr.Number(value=0, precision=0, minimum=0, visible=preset, elem_id="image-generation-size",
                             label="Size in pixels (a multiple of 8; 0: the preset's own)")
            button = gr.Button("Generate", variant="primary", elem_id="image-generation-run")
        with gr.Column():
            gallery = gr.Gallery(label="Images", columns=4, object_fit="contain", format="png", interactive=False,
                                 elem_id="image-generation-gallery")
            settings = gr.Markdown(elem_id="image-generation-settings")
    dice.click(random_seed, None, seed, api_name="random_seed")
    button.click(generate, [source, steps, guidance, num_images, eta, seed, interpolate_to, size],
                 [gallery, settings], api_name="generate")
