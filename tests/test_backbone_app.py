"""The browser demo on a GRAM model with pretrained backbones (tiny random CLIP and CLAP saved to
local directories) and a gallery that is a plain folder of clips without captions, driven through
gradio_client as a script would: /score, /search_by_text, /search_by_clip, and the Model tab."""

import shutil

import pytest
import torch
from web import free_port

pytest.importorskip("transformers")
gradio_client = pytest.importorskip("gradio_client")

from tiny_backbones import build_all  # noqa: E402

import gramviz  # noqa: E402
from gramviz.gram import volume_matrix  # noqa: E402

pytestmark = [pytest.mark.filterwarnings("ignore::UserWarning"), pytest.mark.filterwarnings("ignore::FutureWarning")]



@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("bbapp")
    tiny = build_all(root / "backbones")
    model = gramviz.pretrained_model({"text": gramviz.Backbone("hf", str(tiny["clip"]), tower="text"),
                                      "video": gramviz.Backbone("hf", str(tiny["clip"]), tower="vision"),
                                      "audio": gramviz.Backbone("hf", str(tiny["clap"]), tower="audio")}, embed_dim=16)
    model.save_pretrained(root / "model")
    world = gramviz.world.generate(root / "world", n=6, split="test", workers=1, progress=False, frames=8, size=32)
    clips = root / "clips"
    clips.mkdir()
    for video in sorted((world / "videos").glob("*.mp4")):
        shutil.copy(video, clips / video.name)  # the clips alone: no captions.jsonl
    return root, gramviz.load_model(root / "model"), clips


@pytest.fixture(scope="module")
def app(setup):
    from gramviz.app import launch
    from gramviz.app.state import DemoState

    root, _, clips = setup
    state = DemoState.start(str(root / "model"), clips, progress=False)
    demo = launch.build_demo(state)
    args = launch.parse_args(["--port", str(free_port())])
    demo.launch(prevent_thread_lock=True, quiet=True, **launch.launch_options(state, args))
    yield gradio_client.Client(demo.local_url, verbose=False, download_files=False), state
    demo.close()


def test_the_app_answers_with_a_backbone_model_on_a_folder_without_captions(app, setup):
    client, state = app
    root, model, clips = setup
    files = sorted(clips.glob("*.mp4"))
    assert state.snapshot()[2].n_clips == 6 and state.snapshot()[2].n_captions == 0
    emb = model.encode_clip_files(files)
    query = "A dog is barking near the guitar"
    text = model.encode_text([query])
    expected = volume_matrix(text.double(), emb["video"].double(), emb["audio"].double())[0]  # float64 brute force
    hits = client.predict(query, 6, api_name="/search_by_text")
    assert [h["id"] for h in hits] == [files[i].stem for i in expected.argsort().tolist()]
    assert [h["rank"] for h in hits] == [1, 2, 3, 4, 5, 6] and all(h["notes"] == [] for h in hits)
    like = client.predict(gradio_client.handle_file(str(files[3])), None, 3, api_name="/search_by_clip")
    assert like[0]["id"] == files[3].stem
    summary, text_out, *_ = client.predict(gradio_client.handle_file(str(files[0])), None, query, api_name="/score")
    assert summary["volume"] == pytest.approx(float(expected[0]), abs=1e-4)
    assert summary["ignored_words"] == [] and "volume" in text_out


def test_the_model_tab_loads_a_backbone_model_and_names_a_missing_one(app, setup, tmp_path):
    from gramviz.app.tab_model import load_model_message

    client, state = app
    root, _, _ = setup
    assert "loaded" in load_model_message(state, str(root / "model")).lower()
    from gramviz.app.cards import model_card

    card = model_card(state.snapshot()[0], "mine")
    assert "Backbones: text hf:" in card and "(vision tower), frozen" in card and "trainable)" in card
    broken = tmp_path / "broken"
    shutil.copytree(root / "model", broken)
    config = (broken / "config.json").read_text().replace(str(root / "backbones" / "clap"), str(tmp_path / "gone"))
    (broken / "config.json").write_text(config)
    with pytest.raises(Exception, match=r"backbone hf:.*gone.*no local directory"):
        load_model_message(state, str(broken))
    assert torch.equal(state.snapshot()[0].encode_text(["a dog"]), setup[1].encode_text(["a dog"]))
