# %%
from pairzoo.data.loading import load_dataset
from pairzoo.data.sets import draw
from pairzoo.models.build import build_model
from pairzoo.record.declarations import Relation
from pairzoo.record.writer import PairWriter, Training
from pairzoo.train.config import TrainConfig
from pairzoo.train.loop import accuracy, train

# %% tags=["parameters"]
profile = "ci"
artifacts = ""  # empty: ./artifacts/<profile>
epochs = 10
seed = 0

# %%
finetune = Relation("small-step-finetune", "the base trained further with a 10x smaller step")
data = load_dataset(profile)
writer = PairWriter("my_recipe", profile, data, artifacts, architecture="digits-cnn",
                    relations=[finetune])  # fmt: skip
model = build_model("digits-cnn", len(data.classes), data.input_shape[0], seed)
for name, fraction, lr, start in (("base", 0.2, 0.05, None), ("tuned", 1.0, 0.005, "base")):
    config, part = TrainConfig(epochs=epochs, lr=lr, seed=seed), draw(data, fraction, seed)
    train(model, part.x_train, part.y_train, config)  # the tuned model continues the base
    metrics = {"top1": accuracy(model, data.x_test, data.y_test)}
    writer.add_model(name, model, training=Training.of(part, config, start=start), metrics=metrics)
writer.add_pair("base", "tuned", finetune.name)
writer.finish()
