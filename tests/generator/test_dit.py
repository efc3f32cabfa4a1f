"""The ST-DiT: shapes, zero-initialised output, per-frame timesteps, prompts and checkpoints."""

from dataclasses import asdict, replace

import torch

from generator.dit import DIT_CONFIGS, STDiT, load_checkpoint, save_checkpoint, tokenize

CONFIG = DIT_CONFIGS["test"]  # 4 frames of 4x4x4 latents, 2x2 patches -> 4 tokens per frame


def woken(model: STDiT, seed: int = 0) -> STDiT:
    """The model with its zero-initialised layers filled with small noise, so outputs vary."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if not p.any():
                p.copy_(0.2 * torch.randn(p.shape, generator=g))
    return model.eval()


def inputs(batch: int = 2, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, CONFIG.frames, CONFIG.latent_channels, CONFIG.latent_size, CONFIG.latent_size, generator=g)
    tokens = torch.randint(1, CONFIG.vocab_size, (batch, CONFIG.context_length), generator=g)
    tokens[:, -2:] = 0  # padding
    return x, torch.rand(batch, generator=g), tokens


def test_output_shape_and_zero_init():
    torch.manual_seed(0)
    model = STDiT(CONFIG)
    x, t, tokens = inputs()
    out = model(x, t, tokens)
    assert out.shape == x.shape
    assert torch.equal(out, torch.zeros_like(out))  # DiT's zeroed output layer


def test_tiny_config_fits_clips():
    config = DIT_CONFIGS["tiny"]
    assert (config.latent_size // config.patch) ** 2 == 16 and config.frames == 16
    assert config.width % 4 == 0 and config.width % config.heads == 0


def test_patchify_and_unpatchify_agree():
    config = replace(CONFIG, width=CONFIG.patch**2 * CONFIG.latent_channels, heads=1)
    model = STDiT(config)
    p, C = config.patch, config.latent_channels
    weight = torch.zeros_like(model.patch_embed.proj.weight)  # (D, C, p, p), D = p*p*C
    for py in range(p):
        for px in range(p):
            for c in range(C):
                weight[(py * p + px) * C + c, c, py, px] = 1
    with torch.no_grad():
        model.patch_embed.proj.weight.copy_(weight)
    x = inputs()[0]
    assert torch.equal(model.unpatchify(model.patch_embed(x)), x)


def test_frame_mask_sets_given_frames_to_time_zero():
    torch.manual_seed(0)
    model = woken(STDiT(CONFIG))
    x, t, tokens = inputs()
    frame_mask = torch.tensor([[True, False, False, False], [True, True, False, False]])
    per_frame = t[:, None].expand(2, CONFIG.frames).masked_fill(frame_mask, 0.0)
    context, context_mask = model.encode_text(tokens)
    with torch.no_grad():
        masked = model(x, t, tokens, frame_mask=frame_mask)
        assert torch.allclose(masked, model.velocity(x, per_frame, context, context_mask), atol=1e-6)
        assert not torch.allclose(masked, model(x, t, tokens), atol=1e-4)


def test_temporal_attention_mixes_frames():
    torch.manual_seed(0)
    model = woken(STDiT(CONFIG))
    x, t, tokens = inputs()
    moved = x.clone()
    moved[:, 0] += 1.0
    with torch.no_grad():
        a, b = model(x, t, tokens), model(moved, t, tokens)
    assert not torch.allclose(a[:, -1], b[:, -1], atol=1e-5)  # the last frame sees the first


def test_prompt_matters_and_dropped_prompts_become_null():
    torch.manual_seed(0)
    model = woken(STDiT(CONFIG))
    x, t, tokens = inputs()
    other = inputs(seed=1)[2]
    drop = torch.tensor([True, False])
    with torch.no_grad():
        assert not torch.allclose(model(x, t, tokens), model(x, t, other), atol=1e-5)
        features, mask = model.encode_text(tokens, drop)
        assert torch.equal(features[0], model.text_encoder.null_prompt) and mask[0].all()
        assert torch.equal(features[1], model.encode_text(tokens)[0][1])
        dropped = model(x, t, tokens, drop=torch.ones(2, dtype=torch.bool))
        assert torch.allclose(dropped, model(x, t, other, drop=torch.ones(2, dtype=torch.bool)))


def test_padding_is_ignored():
    torch.manual_seed(0)
    model = woken(STDiT(CONFIG))
    x, t, tokens = inputs()
    shorter = tokens[:, : CONFIG.context_length - 2]  # drops only padding
    with torch.no_grad():
        assert torch.allclose(model(x, t, tokens), model(x, t, shorter), atol=1e-5)


def test_clip_tokenizer_ids():
    tokens = tokenize(["a red ball moving right on black"], context_length=32)
    assert tokens.shape == (1, 32) and tokens[0, 0] == 49406 and 49407 in tokens[0]
    assert tokens.max() < DIT_CONFIGS["tiny"].vocab_size


def test_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    model = woken(STDiT(CONFIG))
    save_checkpoint(tmp_path / "dit.safetensors", model, CONFIG, {"step": 7, "ema": True})
    loaded, config, extra = load_checkpoint(tmp_path / "dit.safetensors")
    assert config == CONFIG and extra == {"step": 7, "ema": True}
    x, t, tokens = inputs()
    with torch.no_grad():
        assert torch.equal(loaded(x, t, tokens), model(x, t, tokens))


def test_a_checkpoint_says_how_it_samples_and_older_ones_sample_unshifted_with_full_guidance(tmp_path):
    from generator.checkpoint import save_weights

    recipe = {"time_shift": 3.0, "guidance_start": 0.75, "early_guidance": 0.5, "frame_guidance": 1.0}
    model = STDiT(replace(CONFIG, **recipe))
    save_checkpoint(tmp_path / "shifted.safetensors", model, model.config)
    assert load_checkpoint(tmp_path / "shifted.safetensors")[1].sampling == recipe
    older = {k: v for k, v in asdict(CONFIG).items() if k not in recipe}  # written before the fields
    save_weights(tmp_path / "older.safetensors", model, older)
    assert load_checkpoint(tmp_path / "older.safetensors")[1].sampling == dict.fromkeys(recipe, 1.0) | {
        "frame_guidance": 0.0}  # given frames do not guide


def test_a_checkpoint_says_its_guidance_for_each_mode_and_older_ones_guide_every_mode_at_4(tmp_path):
    from generator.checkpoint import save_weights

    model = STDiT(replace(CONFIG, guidance=5.0, continue_guidance=2.0))
    save_checkpoint(tmp_path / "own.safetensors", model, model.config)
    config = load_checkpoint(tmp_path / "own.safetensors")[1]
    assert [config.guidance_for(m) for m in ("text", "continue", "animate", "inpaint")] == [5.0, 2.0, 5.0, 5.0]
    older = {k: v for k, v in asdict(CONFIG).items() if k not in ("guidance", "continue_guidance")}
    save_weights(tmp_path / "older.safetensors", model, older)
    config = load_checkpoint(tmp_path / "older.safetensors")[1]
    assert config.guidance_for("text") == config.guidance_for("continue") == 4.0


def test_a_checkpoint_says_how_many_noises_it_searches_and_older_ones_search_none(tmp_path):
    from generator.checkpoint import builtin_path, read_config, save_weights

    searching = ("candidates", "wayless_candidates", "probe_time", "seam_candidates", "search_rounds")
    model = STDiT(replace(CONFIG, candidates=3, wayless_candidates=2, probe_time=0.8, seam_candidates=2,
                          search_rounds=2))
    save_checkpoint(tmp_path / "own.safetensors", model, model.config)
    config = load_checkpoint(tmp_path / "own.safetensors")[1]
    assert tuple(getattr(config, k) for k in searching) == (3, 2, 0.8, 2, 2)
    older = {k: v for k, v in asdict(CONFIG).items() if k not in searching}
    save_weights(tmp_path / "older.safetensors", model, older)
    config = load_checkpoint(tmp_path / "older.safetensors")[1]
    assert config.candidates == config.seam_candidates == config.search_rounds == 1  # the plain sampler
    assert config.wayless_candidates is None  # as many as `candidates`
    renamed = older | {"unchecked_candidates": 2}  # session 24 named wayless_candidates so
    save_weights(tmp_path / "renamed.safetensors", model, renamed)
    assert load_checkpoint(tmp_path / "renamed.safetensors")[1].wayless_candidates == 2
    shipped = read_config(builtin_path("tiny"))
    assert shipped["candidates"] == DIT_CONFIGS["tiny"].candidates == 8  # a retrained tiny samples as it does
    assert shipped["seam_candidates"] == DIT_CONFIGS["tiny"].seam_candidates == 3
    assert shipped["search_rounds"] == DIT_CONFIGS["tiny"].search_rounds == 2
    assert shipped["wayless_candidates"] == DIT_CONFIGS["tiny"].wayless_candidates == 4
    assert shipped["probe_time"] == DIT_CONFIGS["tiny"].probe_time


def test_a_token_table_over_known_words_encodes_them_as_the_full_table_did(tmp_path):
    from generator.dit import vocabulary_of, with_vocabulary

    torch.manual_seed(0)
    full = woken(STDiT(CONFIG))
    words = ["a red ball moving left", "a blue square"]
    known, unknown = tokenize(words, CONFIG.context_length), tokenize(["a dragon", "castle"], CONFIG.context_length)
    vocabulary = vocabulary_of(words)
    assert len(vocabulary) == 9  # start, end and 7 words
    small = with_vocabulary(full, vocabulary)
    assert small.text_encoder.token_embedding.weight.shape == (10, CONFIG.text_width)  # and one shared row
    x, t, _ = inputs()
    with torch.no_grad():
        assert torch.equal(small(x, t, known), full(x, t, known))
        assert not torch.equal(small(x, t, unknown), full(x, t, unknown))
    dragon, castle = tokenize(["dragon", "castle"], CONFIG.context_length)[:, 1]
    assert small.text_encoder.rows[dragon] == small.text_encoder.rows[castle] == 0  # unknown words share a row
    save_checkpoint(tmp_path / "small.safetensors", small, small.config)
    loaded, config, _ = load_checkpoint(tmp_path / "small.safetensors")
    assert config == small.config and config.vocabulary == vocabulary
    with torch.no_grad():
        assert torch.equal(loaded(x, t, unknown), small(x, t, unknown))
    wider = with_vocabulary(loaded, tuple(sorted(vocabulary + (int(dragon),))))  # a new word: from the shared row
    with torch.no_grad():
        assert torch.equal(wider(x, t, unknown), small(x, t, unknown)) and torch.equal(wider(x, t, known),
                                                                                      small(x, t, known))
    assert wider.text_encoder.rows[dragon] > 0 and wider.text_encoder.rows[castle] == 0


def test_a_frame_prompt_starts_silent_then_lets_the_prompt_set_each_frame_apart(tmp_path):
    from generator.dit import FramePrompt, with_prompt_terms

    torch.manual_seed(0)
    plain = woken(STDiT(CONFIG))
    x, t, tokens = inputs()
    with_term = with_prompt_terms(plain, frame=True)
    assert with_term.config.frame_prompt and with_prompt_terms(with_term, frame=True) is with_term
    with torch.no_grad():
        assert torch.equal(with_term(x, t, tokens), plain(x, t, tokens))  # zero at first: the same model
    term = woken(FramePrompt(CONFIG))
    context, mask = plain.encode_text(tokens)
    frames = plain.temporal_pos[:, 0]  # (T, D)
    with torch.no_grad():
        out = term(context, mask, frames)  # (B, T, D)
        assert out.shape == (2, CONFIG.frames, CONFIG.width)
        assert not torch.allclose(out[:, 0], out[:, -1])  # frames apart
        assert not torch.allclose(out[0], out[1])  # prompts apart
        changed_pad = torch.where(mask[..., None], context, torch.randn_like(context))
        assert torch.allclose(term(changed_pad, mask, frames), out, atol=1e-6)  # padding is not pooled
    loaded = trained_and_reloaded(with_term, plain, tmp_path / "fp.safetensors")
    assert loaded.config.frame_prompt and not plain.config.frame_prompt


def test_a_spacetime_prompt_starts_silent_then_sets_each_place_in_each_frame_by_prompt(tmp_path):
    from generator.dit import SpacetimePrompt, with_prompt_terms

    torch.manual_seed(0)
    plain = woken(STDiT(CONFIG))
    x, t, tokens = inputs()
    with_term = with_prompt_terms(plain, spacetime=True)
    assert with_term.config.spacetime_prompt and not with_term.config.frame_prompt
    assert with_prompt_terms(with_term, spacetime=True) is with_term
    with torch.no_grad():
        assert torch.equal(with_term(x, t, tokens), plain(x, t, tokens))  # zero at first: the same model
    term = woken(SpacetimePrompt(CONFIG))
    context, mask = plain.encode_text(tokens)
    frames, places = plain.temporal_pos[:, 0], plain.spatial_pos  # (T, D), (N, D)
    with torch.no_grad():
        out = term(context, mask, frames, places)  # (B, T, N, D)
        assert out.shape == (2, CONFIG.frames, places.shape[0], CONFIG.width)
        assert not torch.allclose(out[:, 0], out[:, -1])  # frames apart
        assert not torch.allclose(out[:, :, 0], out[:, :, -1])  # places apart
        assert not torch.allclose(out[0], out[1])  # prompts apart
        # not a sum of a frame part and a place part: the prompt can make a place's term change by frame
        additive = out[:, :1] + out[:, :, :1] - out[:, :1, :1]
        assert not torch.allclose(out, additive, atol=1e-4)
        changed_pad = torch.where(mask[..., None], context, torch.randn_like(context))
        assert torch.allclose(term(changed_pad, mask, frames, places), out, atol=1e-6)  # padding is not pooled
    loaded = trained_and_reloaded(with_term, plain, tmp_path / "st.safetensors")
    assert loaded.config.spacetime_prompt and not plain.config.spacetime_prompt


def trained_and_reloaded(with_term: STDiT, plain: STDiT, path) -> STDiT:
    """`with_term` with its silent term woken, saved to `path` and loaded back: the loaded model must
    predict as the saved one, and apart from `plain`, the model the term was added to."""
    woken(with_term, seed=1)
    save_checkpoint(path, with_term, with_term.config)
    loaded, _, _ = load_checkpoint(path)
    x, t, tokens = inputs()
    with torch.no_grad():
        assert torch.equal(loaded(x, t, tokens), with_term(x, t, tokens))
        assert not torch.allclose(loaded(x, t, tokens), plain(x, t, tokens))
    return loaded
